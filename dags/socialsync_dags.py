"""One daily sync DAG per network in the socialsync registry (instagram_sync, ...)."""

from __future__ import annotations

from socialsync.airflow.dag_factory import build_sync_dag
from socialsync.networks import REGISTRY

for _network in REGISTRY.values():
    globals()[_network.dag_id] = build_sync_dag(_network)
