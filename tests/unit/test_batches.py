from __future__ import annotations

from datetime import UTC, datetime

from socialsync.storage import jobs, planning
from socialsync.storage.engine import warehouse_engine

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_batch_count_stays_bounded() -> None:
    assert planning.batch_count(0, 128, 25) == 0
    assert planning.batch_count(1, 128, 25) == 1
    assert planning.batch_count(26, 128, 25) == 2
    assert planning.batch_count(300_000, 128, 25) == 128
    assert planning.batch_count(10, 128, 3) == 4


def test_automatic_batches_follow_the_slots_not_a_fixed_size() -> None:
    auto = planning.auto_batch_count  # (entities, target, max_batches, min_batch_size, max_batch_size)
    assert auto(0, 8, 128, 25, 2000) == 0
    assert auto(30, 8, 128, 25, 2000) == 2  # a handful: batches of at least 25
    assert auto(300, 8, 128, 25, 2000) == 8
    assert auto(10_000, 8, 128, 25, 2000) == 8  # 1,250 a batch: 56 task instances, not 128 batches' 896
    assert auto(100_000, 8, 128, 25, 2000) == 50  # no batch above 2,000 profiles
    assert auto(1_000_000, 8, 128, 25, 2000) == 128  # nor more batches than the map can hold
    assert auto(10, 0, 128, 25, 2000) == 1


def test_open_jobs_deals_batches_and_replanning_links_the_previous_job(tmp_path) -> None:
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        first = planning.open_jobs(conn, "instagram", "run-1", ["a", "b", "c"], {}, 2, NOW)
    with engine.connect() as conn:
        batch0 = jobs.jobs_in_batch(conn, "instagram", "run-1", 0)
        batch1 = jobs.jobs_in_batch(conn, "instagram", "run-1", 1)
    assert [j.entity_id for j in batch0] == ["a", "c"] and [j.entity_id for j in batch1] == ["b"]
    with engine.begin() as conn:
        again = planning.open_jobs(conn, "instagram", "run-1", ["a", "b", "c"], {}, 1, NOW)
        replanned = jobs.jobs_in_batch(conn, "instagram", "run-1", 0)
        from sqlalchemy import select

        from socialsync.storage.schema import sync_jobs
        rows = {r.id: r for r in conn.execute(select(sync_jobs))}
    assert [j.id for j in replanned] == again
    assert [rows[j].previous_job_id for j in again] == first
    assert all(rows[j].status == "failed" and rows[j].error_type == "superseded" for j in first)


def test_due_entities_respects_the_watermark(tmp_path) -> None:
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        assert planning.track_entities(conn, "instagram", ["a", "b", "a"], NOW) == 2
        assert planning.track_entities(conn, "instagram", ["b", "c"], NOW) == 1
        jobs.advance_watermark(conn, "instagram", "b", NOW)
        assert planning.due_entities(conn, "instagram", NOW) == ["a", "c"]
        assert planning.due_entities(conn, "tiktok", NOW) == []
