"""Airflow connections (as ``AIRFLOW_CONN_*`` variables) pointing at a test's sandbox and warehouse."""

from __future__ import annotations

import json

from sqlalchemy.engine import make_url

# The sandbox default token's app user (its first account): business discovery is asked on it.
APP_USER = "178400000000000000"


def warehouse_connection(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return json.dumps({"conn_type": "sqlite", "host": parsed.database})
    return json.dumps({"conn_type": "postgres", "host": parsed.host, "port": parsed.port,
                       "login": parsed.username, "schema": parsed.database})


def sandbox_connections(sandbox_url: str, warehouse_url: str, youtube_extra: dict[str, object] | None = None,
                        tiktok_extra: dict[str, object] | None = None, **instagram_extra: object) -> dict[str, str]:
    key = {"X-Api-Key": "sandbox-key"}
    return {
        "AIRFLOW_CONN_INSTAGRAM_API": json.dumps({"conn_type": "http", "host": f"{sandbox_url}/v21.0",
                                                  "password": "sandbox-token",
                                                  "extra": {"page_size": 10, "ig_user_id": APP_USER,
                                                            **instagram_extra}}),
        "AIRFLOW_CONN_YOUTUBE_API": json.dumps({"conn_type": "http", "host": f"{sandbox_url}/youtube/v3",
                                                "password": "sandbox-key", "extra": youtube_extra or {}}),
        "AIRFLOW_CONN_TIKTOK_API": json.dumps({"conn_type": "http", "host": f"{sandbox_url}/tiktok/v2",
                                               "login": "sandbox-client", "password": "sandbox-secret",
                                               "extra": {"horizon_days": 3650, **(tiktok_extra or {})}}),
        "AIRFLOW_CONN_ML_API": json.dumps({"conn_type": "http", "host": f"{sandbox_url}/ml/v1", "extra": key}),
        "AIRFLOW_CONN_VISION_API": json.dumps({"conn_type": "http", "host": f"{sandbox_url}/vision/v1",
                                               "extra": key}),
        "AIRFLOW_CONN_SOCIALSYNC_DB": warehouse_connection(warehouse_url),
    }
