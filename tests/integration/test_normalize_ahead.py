"""Normalizing each job while the extract goes on (``NormalizeBehind``): the normalize step after it does
only what is left, reports the same counts, and does a job again once it has a page its normalize did not read."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select

from socialsync.networks.base import FetchedPage
from socialsync.sandbox.dataset import Dataset
from socialsync.sandbox.server import SandboxServer
from socialsync.storage.raw import write_raw_page
from socialsync.storage.schema import sync_jobs, sync_tasks
from socialsync.transform.pipeline import NormalizeBehind, normalize_jobs, normalized_through
from tests.integration.sync_helpers import INSTAGRAM, checksums, client_for, day, sync, tracked_ids
from tests.integration.truth import assert_warehouse_matches


def test_jobs_normalized_during_the_extract_are_not_done_again(sandbox: SandboxServer, warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    report = sync(warehouse, client_for(sandbox), tracked_ids(dataset), "day-0", day(0))
    assert_warehouse_matches(warehouse, dataset, enrich=False)
    with warehouse.connect() as conn:
        job_ids = list(conn.scalars(select(sync_jobs.c.id).where(sync_jobs.c.run_id == "day-0")))
    done = normalized_through(warehouse, job_ids)
    assert set(done) == set(job_ids)  # every job's normalize read its last page

    # The normalize step after the extract: nothing to do, and the same figures a full normalize gives.
    rows = checksums(warehouse)
    again = normalize_jobs(warehouse, INSTAGRAM, job_ids, skip_normalized=True)
    assert checksums(warehouse) == rows
    full = normalize_jobs(warehouse, INSTAGRAM, job_ids)
    assert again.as_xcom() == full.as_xcom() and full.comments > 0 and report["rows"] > 0
    assert checksums(warehouse) == rows

    # A page landing after a job's normalize (a retried extract) makes it due again, and only it.
    first = min(job_ids)
    with warehouse.begin() as conn:
        entity = conn.scalar(select(sync_jobs.c.entity_id).where(sync_jobs.c.id == first))
        write_raw_page(conn, "instagram", first, FetchedPage("stories", str(entity), {}, 200, {"data": []}, None, None,
                                                             0), day(0) + timedelta(minutes=5))
    assert set(normalized_through(warehouse, job_ids)) == set(job_ids) - {first}
    normalize_jobs(warehouse, INSTAGRAM, job_ids, skip_normalized=True)
    assert set(normalized_through(warehouse, job_ids)) == set(job_ids)
    assert checksums(warehouse) == rows


def test_a_failed_normalize_ahead_is_left_to_the_normalize_step(sandbox: SandboxServer, warehouse: Engine) -> None:
    dataset: Dataset = sandbox.app.state.dataset
    sync(warehouse, client_for(sandbox), tracked_ids(dataset), "day-0", day(0))
    with warehouse.connect() as conn:
        job_ids = list(conn.scalars(select(sync_jobs.c.id)))
    with warehouse.begin() as conn:  # as if no normalize had run yet
        conn.execute(sync_tasks.delete().where(sync_tasks.c.kind == "normalize"))
    with NormalizeBehind(warehouse, INSTAGRAM) as behind:
        behind.submit(10**9)  # no such job: that normalize fails, is logged, and nothing else stops
        for job_id in job_ids:
            behind.submit(job_id)
    done = normalized_through(warehouse, job_ids)
    if warehouse.dialect.name == "sqlite":
        assert not behind.enabled and done == {}  # SQLite: the normalize step does it all
    else:
        assert set(done) == set(job_ids)
    normalize_jobs(warehouse, INSTAGRAM, job_ids, skip_normalized=True)
    assert set(normalized_through(warehouse, job_ids)) == set(job_ids)
    assert_warehouse_matches(warehouse, dataset, enrich=False)
