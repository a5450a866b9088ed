"""Every network's DAGs, for a team's DAG file to import: its daily sync and its rebuild-from-raw DAG.

A deployment adds one file to its DAGs folder (Airflow looks for files that name both "airflow" and
"dag", so keep the comment)::

    # Airflow DAGs of socialsync
    from socialsync.dags import *  # noqa: F403

The DAGs are built here, once per process that imports this module.
"""

from __future__ import annotations

from airflow.sdk import DAG

from socialsync.airflow.dag_factory import build_rebuild_dag, build_sync_dag
from socialsync.networks import REGISTRY

DAGS: dict[str, DAG] = {}
for _network in REGISTRY.values():
    DAGS[_network.dag_id] = build_sync_dag(_network)
    DAGS[f"{_network.name}_rebuild"] = build_rebuild_dag(_network)
globals().update(DAGS)

__all__ = list(DAGS)  # what a DAG file's star import brings into its namespace
