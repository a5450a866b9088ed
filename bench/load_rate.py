"""Load rate of the staged bulk upsert against a bare ``COPY`` + one ``INSERT ... SELECT`` on the same server.

``python bench/load_rate.py --warehouse-url postgresql+psycopg2://... --rows 200000`` prints rows/s of
both and their ratio; ``make bench`` calls :func:`measure_load`.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete

from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import comments, posts
from socialsync.storage.staging import StagedUpserts

NETWORK = "bench"
PAGE_ROWS = 50  # a comment page of the Graph API at its largest
MOMENT = datetime(2026, 11, 1, tzinfo=UTC)
ROUNDS = 5  # paired rounds, the order swapped each round: the ratio is their median (the box is shared)


def synthetic_rows(rows: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``rows`` normalized comments over a few posts, text with the characters COPY must escape."""
    post_count = max(1, rows // 1000)
    created = MOMENT - timedelta(days=30)
    post_rows = [{"network": NETWORK, "post_id": f"p{p:07d}", "profile_id": "bench-profile", "kind": "image",
                  "product_type": "feed", "caption": f"post {p}\twith a tab", "permalink": None,
                  "created_at": created + timedelta(minutes=p), "like_count": p, "comments_count": rows // post_count,
                  "view_count": None, "deleted": False, "synced_at": MOMENT} for p in range(post_count)]
    comment_rows = [{"network": NETWORK, "comment_id": f"c{c:09d}", "post_id": f"p{c % post_count:07d}",
                     "author_id": f"a{c % 977}", "author_username": f"user_{c % 977}",
                     "content": f"comment {c}: nice \\o/ \"quoted\"\nsecond line ✓" if c % 10 == 0 else f"comment {c}",
                     "created_at": created + timedelta(seconds=c), "like_count": c % 50 or None,
                     "deleted": False, "synced_at": MOMENT} for c in range(rows)]
    return post_rows, comment_rows


def measure_load(engine_url: str, rows: int) -> dict[str, float]:
    """Rows/s of the project's staged path and of a bare COPY + upsert, loading ``rows`` comments.

    Both start from the same Python rows into emptied tables on the same server, and both are
    timed from rows to commit, formatting included. ``ratio`` is staged over bare (1.0: as fast).
    """
    engine = warehouse_engine(engine_url)
    post_rows, comment_rows = synthetic_rows(rows)
    bare = _bare_postgres if engine.dialect.name == "postgresql" else _bare_sqlite
    ways: dict[str, Callable[[Connection], None]] = {
        "staged": lambda conn: _staged(conn, post_rows, comment_rows),
        "bare": lambda conn: bare(conn, post_rows, comment_rows)}
    best = dict.fromkeys(ways, float("inf"))
    ratios = []
    try:
        for n in range(ROUNDS):
            # Each round times both ways back to back, from the same server state (emptied, vacuumed,
            # checkpointed), first one then the other: a drift of the shared box lands on both.
            took = {name: _timed(engine, ways[name]) for name in (("staged", "bare") if n % 2 else ("bare", "staged"))}
            ratios.append(took["bare"] / took["staged"])
            best = {name: min(best[name], took[name]) for name in ways}
    finally:
        _clear(engine)
        engine.dispose()
    loaded = len(post_rows) + len(comment_rows)
    return {"rows": float(loaded), "staged_rows_per_s": loaded / best["staged"],
            "bare_rows_per_s": loaded / best["bare"], "ratio": statistics.median(ratios),
            "ratio_low": min(ratios), "ratio_high": max(ratios)}


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (comments, posts):
            conn.execute(delete(table).where(table.c.network == NETWORK))


def _timed(engine: Engine, load: Callable[[Connection], None]) -> float:
    _clear(engine)
    if engine.dialect.name == "postgresql":  # dead rows and dirty pages of the last round are not this one's cost
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM comments, posts")
            conn.exec_driver_sql("CHECKPOINT")
    start = time.perf_counter()
    with engine.begin() as conn:
        load(conn)
    return time.perf_counter() - start


def _staged(conn: Connection, post_rows: list[dict[str, Any]], comment_rows: list[dict[str, Any]]) -> None:
    # Page by page, as normalize offers them.
    with StagedUpserts(conn, newer="synced_at") as stage:
        for start in range(0, len(post_rows), PAGE_ROWS):
            stage.append(posts, post_rows[start : start + PAGE_ROWS])
        for start in range(0, len(comment_rows), PAGE_ROWS):
            stage.append(comments, comment_rows[start : start + PAGE_ROWS])
        stage.merge()


# --- the reference: what a person would write by hand, on the driver, with no project code ---------
def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _bare_postgres(conn: Connection, post_rows: list[dict[str, Any]], comment_rows: list[dict[str, Any]]) -> None:
    raw = conn.connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cursor:
        for table, key, rows in (("posts", ("network", "post_id"), post_rows),
                                 ("comments", ("network", "comment_id"), comment_rows)):
            columns = list(rows[0])
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerows([_plain(row[c]) for c in columns] for row in rows)
            buffer.seek(0)
            cursor.execute(f"CREATE TEMPORARY TABLE bare_{table} (LIKE {table}) ON COMMIT DROP")
            cursor.copy_expert(f"COPY bare_{table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)
            cursor.execute(_bare_upsert(table, key, columns, f"bare_{table}"))


def _bare_sqlite(conn: Connection, post_rows: list[dict[str, Any]], comment_rows: list[dict[str, Any]]) -> None:
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        for table, key, rows in (("posts", ("network", "post_id"), post_rows),
                                 ("comments", ("network", "comment_id"), comment_rows)):
            columns = list(rows[0])
            cursor.execute(f"DROP TABLE IF EXISTS temp.bare_{table}")
            cursor.execute(f"CREATE TEMPORARY TABLE bare_{table} AS SELECT * FROM {table} WHERE 0")
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(f"INSERT INTO bare_{table} ({', '.join(columns)}) VALUES ({marks})",
                               ([_sqlite_value(row[c]) for c in columns] for row in rows))
            cursor.execute(_bare_upsert(table, key, columns, f"bare_{table}", where="WHERE true"))
            cursor.execute(f"DROP TABLE temp.bare_{table}")
    finally:
        cursor.close()


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    return value


def _bare_upsert(table: str, key: Sequence[str], columns: Sequence[str], source: str, where: str = "") -> str:
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (f"INSERT INTO {table} ({names}) SELECT {names} FROM {source} {where} "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} WHERE {table}.synced_at <= excluded.synced_at")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--warehouse-url", required=True, help="SQLAlchemy URL (SQLite or PostgreSQL)")
    parser.add_argument("--rows", type=int, default=200_000, help="comment rows to load (default 200,000)")
    args = parser.parse_args(argv)
    result = measure_load(args.warehouse_url, args.rows)
    print(f"{int(result['rows']):,} rows: staged {result['staged_rows_per_s']:,.0f} rows/s, "
          f"bare COPY + upsert {result['bare_rows_per_s']:,.0f} rows/s, ratio {result['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
