"""Celery settings for workers that run socialsync: ``[celery] celery_config_options`` names this.

``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=socialsync.airflow.celery_config.CELERY_CONFIG`` keeps every
setting of the Celery provider's own default (``DEFAULT_CELERY_CONFIG``, built from ``[celery]``) and
adds Celery's ``imports``: the worker imports ``socialsync.airflow.preload`` once, before it forks its
pool, so that no task process imports the sync's code again (see that module).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), "socialsync.airflow.preload"),
}
