"""Clients and engines built from Airflow connections, inside tasks (never at DAG parse time)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from airflow.sdk import BaseHook, Connection
from airflow.sdk.log import mask_secret
from sqlalchemy import Engine

from socialsync.enrich.client import JobApiClient
from socialsync.extract.secrets import MIN_SECRET_LENGTH, is_secret_name
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


def _secret_values(conn: Connection, extra: Mapping[str, Any]) -> list[str]:
    """The password, and every extra under a credential-like name (``X-Api-Key``), nested ones too."""
    found: list[str] = [conn.password] if conn.password else []

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(inner, secret or is_secret_name(str(key)))
        elif isinstance(value, list):
            for inner in value:
                walk(inner, secret)
        elif secret and isinstance(value, str) and value:
            found.append(value)

    walk(extra, False)
    return list(dict.fromkeys(found))


def _mask_forms(secrets: Iterable[str]) -> list[str]:
    """Each secret and its URL-encoded forms, which is how a token shows up in a logged URL."""
    forms = (form for s in secrets if len(s) >= MIN_SECRET_LENGTH for form in (s, quote(s, safe=""), quote_plus(s)))
    return list(dict.fromkeys(forms))


def _mask_in_core(forms: list[str]) -> None:
    # Where airflow-core runs (scheduler with its LocalExecutor workers, dag.test(), the triggerer's
    # supervisor), its stdlib log handlers filter with a masker of their own, separate from the SDK's.
    try:
        from airflow._shared.secrets_masker import mask_secret as mask_in_core
    except ImportError:  # a worker with only the task SDK installed
        return
    for form in forms:
        mask_in_core(form)


def _masked_secrets(conn: Connection) -> list[str]:
    secrets = _secret_values(conn, conn.extra_dejson)
    forms = _mask_forms(secrets)
    for form in forms:
        mask_secret(form)
    _mask_in_core(forms)
    return secrets


def connection_secrets(conn_id: str) -> list[str]:
    """The connection's credentials, registered with Airflow's log masker in this process (and its supervisor).

    Airflow masks extras only under the names it deems sensitive, with its own list; this registers
    the values themselves, so a header like ``X-Api-Key`` is masked wherever it is configured. The
    list is what a ``SecretScrubber`` needs to clean what the API echoes back before it is stored.
    """
    return _masked_secrets(BaseHook.get_connection(conn_id))


async def aconnection_secrets(conn_id: str) -> list[str]:
    """``connection_secrets`` for a trigger's ``run``: the sync calls cannot reach the triggerer from its loop."""
    conn = await BaseHook.aget_connection(conn_id)
    secrets = _secret_values(conn, await conn.aextra_dejson())
    forms = _mask_forms(secrets)
    for form in forms:
        await _amask_secret(form)
    _mask_in_core(forms)
    return secrets


async def _amask_secret(form: str) -> None:
    try:  # Airflow 3.3+: the triggerer's supervisor is told without blocking the event loop
        from airflow.sdk.log import amask_secret
    except ImportError:  # 3.2: this process's masker only (its logs are the trigger's own)
        mask_secret(form)
        return
    await amask_secret(form)


def warehouse(conn_id: str = WAREHOUSE_CONN_ID) -> Engine:
    """The warehouse engine: a ``postgres`` connection in production, ``sqlite`` (host = file) locally.

    One engine (one pool, one schema check) per connection and process: a task's steps and its
    normalize-behind thread share its connections instead of each opening a pool of their own.
    """
    conn = BaseHook.get_connection(conn_id)
    key = (conn_id, conn.get_uri())  # a connection edited since is a new engine
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = warehouse_for(conn, conn_id)
    return engine


_ENGINES: dict[tuple[str, str], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def warehouse_for(conn: Any, conn_id: str, **engine_options: Any) -> Engine:
    """The engine of a warehouse connection however it was read (the task SDK's, or airflow-core's in the
    API server): the postgres provider builds the URL (extras ``sqlalchemy_query``, ``iam``) either way."""
    if conn.conn_type in ("postgres", "postgresql"):
        from airflow.providers.postgres.hooks.postgres import PostgresHook  # socialsync[postgres]

        url = PostgresHook(postgres_conn_id=conn_id, connection=conn).sqlalchemy_url
        return warehouse_engine(url, pool_pre_ping=True, **engine_options)
    if conn.conn_type == "sqlite":
        return warehouse_engine(f"sqlite:///{conn.host}", **engine_options)
    raise ValueError(f"connection {conn_id!r} has type {conn.conn_type!r}; use 'postgres' or 'sqlite'")


def extras(conn: Connection) -> dict[str, Any]:
    """The connection's extras as the code reads them: a field the UI's form left empty is unset, and a
    field saved under the form's prefixed name (``extra__socialsync_instagram__page_size``) is the field."""
    prefix = f"extra__{conn.conn_type}__"
    return {key.removeprefix(prefix): value for key, value in conn.extra_dejson.items() if value not in (None, "")}


def api_credentials(conn_id: str) -> ApiCredentials:
    """A network API (a ``socialsync_<network>`` connection, or ``http``): host = base URL (with the API
    version path), password = access token, extras = the client's options."""
    conn = BaseHook.get_connection(conn_id)
    if not conn.host:
        raise ValueError(f"connection {conn_id!r} has no host: set it to the API's base URL")
    _masked_secrets(conn)
    return ApiCredentials(base_url=_base_url(conn.host, conn.schema, conn.port), token=conn.password or "",
                          options={**({"login": conn.login} if conn.login else {}), **extras(conn)})


def job_api(conn_id: str) -> JobApiClient:
    """An ML / image job API (``socialsync_ml`` / ``socialsync_vision``, or ``http``): host = base URL; the
    extras are its headers (``{"X-Api-Key": ...}``)."""
    conn = BaseHook.get_connection(conn_id)
    _masked_secrets(conn)
    headers = {str(k): str(v) for k, v in extras(conn).items()}
    return JobApiClient(_base_url(conn.host, conn.schema, conn.port), headers)
