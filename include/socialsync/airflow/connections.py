"""Clients and engines built from Airflow connections, inside tasks (never at DAG parse time)."""

from __future__ import annotations

from functools import lru_cache

from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk import BaseHook
from sqlalchemy import Engine

from socialsync.enrich.client import JobApiClient
from socialsync.networks.base import ApiCredentials
from socialsync.storage.engine import warehouse_engine

WAREHOUSE_CONN_ID = "socialsync_db"


def _base_url(host: str | None, schema: str | None, port: int | None) -> str:
    host = host or ""
    url = host if "://" in host else f"{schema or 'https'}://{host}"
    if port:
        scheme, _, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        url = f"{scheme}://{netloc}:{port}{slash}{path}"
    return url


@lru_cache(maxsize=4)
def warehouse(conn_id: str = WAREHOUSE_CONN_ID) -> Engine:
    """The warehouse engine: a ``postgres`` connection in production, ``sqlite`` (host = file) locally."""
    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type == "postgres":
        return warehouse_engine(PostgresHook(postgres_conn_id=conn_id).sqlalchemy_url,
                                pool_pre_ping=True)
    if conn.conn_type == "sqlite":
        return warehouse_engine(f"sqlite:///{conn.host}")
    raise ValueError(f"connection {conn_id!r} has type {conn.conn_type!r}; use 'postgres' or 'sqlite'")


def api_credentials(conn_id: str) -> ApiCredentials:
    """A network API: host = base URL (with the API version path), password = access token."""
    conn = BaseHook.get_connection(conn_id)
    if not conn.host:
        raise ValueError(f"connection {conn_id!r} has no host: set it to the API's base URL")
    return ApiCredentials(base_url=_base_url(conn.host, conn.schema, conn.port), token=conn.password or "",
                          options=dict(conn.extra_dejson))


def job_api(conn_id: str) -> JobApiClient:
    """An ML / image job API: host = base URL; the extras are its headers (``{"X-Api-Key": ...}``)."""
    conn = BaseHook.get_connection(conn_id)
    headers = {str(k): str(v) for k, v in conn.extra_dejson.items()}
    return JobApiClient(_base_url(conn.host, conn.schema, conn.port), headers)
