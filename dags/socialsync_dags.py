"""Per network in the socialsync registry: its daily sync DAG and its rebuild-from-raw DAG."""

from __future__ import annotations

from socialsync.airflow.dag_factory import build_rebuild_dag, build_sync_dag
from socialsync.networks import REGISTRY

for _network in REGISTRY.values():
    globals()[_network.dag_id] = build_sync_dag(_network)
    globals()[f"{_network.name}_rebuild"] = build_rebuild_dag(_network)
