"""Alembic's environment for the warehouse.

Processes migrate through ``socialsync.storage.migrate.upgrade``, which hands its connection in. From
the command line (new revisions, an upgrade by hand)::

    .venv/bin/alembic -c include/socialsync/storage/migrations/alembic.ini -x url=postgresql://... upgrade head
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from socialsync.storage.schema import metadata


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("alembic: pass the warehouse with -x url=<SQLAlchemy URL>")
    engine = create_engine(url)
    with engine.begin() as connection:
        run(connection)
    engine.dispose()
