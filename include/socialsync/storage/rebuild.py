"""Clearing a network's normalized rows before they are re-derived from raw pages."""

from __future__ import annotations

from sqlalchemy import Connection, delete

from socialsync.storage.schema import comments, follows, likes, media, metrics, posts, profiles

# Enrichments are the external services' answers, not derivable from raw: a rebuild keeps them.
DERIVED_FROM_RAW = (profiles, posts, media, comments, follows, likes, metrics)


def clear_derived(conn: Connection, network: str) -> dict[str, int]:
    counts = {}
    for table in DERIVED_FROM_RAW:
        counts[table.name] = conn.execute(delete(table).where(table.c.network == network)).rowcount
    return counts

