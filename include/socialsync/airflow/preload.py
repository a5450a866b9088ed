"""What a socialsync task process imports, imported once by the process that forks the task processes.

Every task instance is a process of its own that parses the DAG file before it runs: importing the
sync's code there (Airflow's task runner, SQLAlchemy, httpx, pydantic, the networks' clients) cost it
about 1.3 CPU-seconds, 42% of a quiet day's task CPU. Imported in the process that forks them, it is
inherited copy-on-write instead:

- the scheduler (LocalExecutor): it loads Airflow's plugins before it forks its workers, and the
  package's plugin (``plugins/socialsync_plugin.py``) imports this module;
- a Celery worker: ``socialsync.airflow.celery_config`` makes it import this module before it forks
  its pool.

It only imports modules: nothing here opens a connection, an engine or a thread (a fork would share
them), and it loads no plugin (the plugin imports it while Airflow loads plugins). The DAG file still
runs in each task process; only its imports are found loaded. After an upgrade of socialsync, restart
the scheduler and the workers so that they import the new code.
"""

from __future__ import annotations

from importlib import import_module

MODULES = (
    # Airflow's side of a task process: the supervisor forks the task runner, which parses the DAG file
    # (its timetables among what that imports).
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.sdk.definitions.timetables.interval",
    "airflow.sdk.definitions.timetables.trigger",
    "airflow.timetables.base",
    # The DAG file's imports, and through them every task's code.
    "socialsync.airflow.dag_factory",
    "socialsync.storage.engine",
    # The warehouse's drivers (SQLAlchemy imports a dialect on the first engine of its kind).
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite.pysqlite",
)


def preload() -> None:
    for name in MODULES:
        import_module(name)
    from socialsync.networks import PLUGINS  # each network's client and mapping

    for name in PLUGINS:
        import_module(name)


preload()
