"""kill -9 in the middle of a YouTube extract loses nothing and re-fetches at most one uploads page
(its playlistItems call and its videos call) per channel that was in flight."""

from __future__ import annotations

from urllib.parse import parse_qs

from sqlalchemy import func, select

from socialsync.extract import runner
from socialsync.local import inline
from socialsync.networks.base import ApiCredentials
from socialsync.networks.youtube import NETWORK as YOUTUBE
from socialsync.networks.youtube.client import YouTubeClient
from socialsync.sandbox.dataset import DatasetSpec
from socialsync.sandbox.server import SandboxConfig, SandboxServer
from socialsync.sandbox.youtube_dataset import YouTubeDataset
from socialsync.storage import jobs as bookkeeping
from socialsync.storage.engine import warehouse_engine
from socialsync.storage.schema import raw_pages
from socialsync.transform.pipeline import normalize_jobs
from tests.conftest import ROOT
from tests.hostile import HostileProxy
from tests.integration.sync_helpers import SCOPE, clock, day, kill_when
from tests.integration.youtube_truth import assert_youtube_matches

PAGE = 5
KILL_AFTER = 8  # committed uploads pages, across the channels in flight

CHILD = """
import sys
from datetime import UTC, datetime
from socialsync.extract import runner
from socialsync.networks.base import ApiCredentials
from socialsync.networks.youtube import NETWORK
from socialsync.networks.youtube.client import YouTubeClient
from socialsync.storage import jobs
from socialsync.storage.engine import warehouse_engine
url, base, run_id, as_of = sys.argv[1:5]
engine = warehouse_engine(url)
with engine.connect() as conn:
    batch = jobs.jobs_in_batch(conn, "youtube", run_id, 0)
client = YouTubeClient(ApiCredentials(base, "sandbox-key", {"page_size": PAGE}))
window = runner.ExtractWindow(scope=frozenset({"profile", "posts", "comments"}),
                              as_of=datetime.fromisoformat(as_of))
runner.extract_posts(engine, NETWORK, client, batch, window, lambda: datetime.now(UTC))
""".replace("PAGE", str(PAGE))


def _uploads_pages(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(raw_pages).where(raw_pages.c.kind == "posts")))


def test_sigkill_mid_extract_then_retry_loses_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = DatasetSpec(seed=99, profiles=4, posts_median=80, posts_max=200, comments_median=3)
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = warehouse_engine(url)
    with SandboxServer(SandboxConfig(spec=spec, latency_ms=40)) as sandbox, HostileProxy(sandbox.url) as proxy:
        data: YouTubeDataset = sandbox.app.state.youtube.data
        channels = [data.channel_id(p) for p in range(spec.profiles)]
        inline.open_batch(engine, "youtube", channels, "run", day(1))
        kill_when(CHILD, [url, f"{proxy.url}/youtube/v3", "run", day(1).isoformat()], ROOT,
                  lambda: _uploads_pages(engine) >= KILL_AFTER)
        stored_at_kill = _uploads_pages(engine)
        started = {_playlist(r.query) for r in proxy.requests if r.path.endswith("/playlistItems")}

        with engine.connect() as conn:
            jobs = bookkeeping.jobs_in_batch(conn, "youtube", "run", 0)
        client = YouTubeClient(ApiCredentials(f"{proxy.url}/youtube/v3", "sandbox-key", {"page_size": PAGE}))
        window = runner.ExtractWindow(scope=SCOPE, as_of=day(1))
        runner.extract_posts(engine, YOUTUBE, client, jobs, window, clock)
        runner.extract_comments(engine, YOUTUBE, client, jobs, window, clock)
        normalize_jobs(engine, YOUTUBE, [job.id for job in jobs])

        assert len(started) > 1, "the channels should have been worked concurrently"
        total = 0
        for p, channel in enumerate(channels):
            # The sandbox serves short pages now and then (as YouTube does): a page is a distinct token.
            tokens = [parse_qs(r.query).get("pageToken", [""])[0] for r in proxy.requests
                      if r.path.endswith("/playlistItems") and _playlist(r.query) == data.uploads_playlist_id(p)]
            total += len(set(tokens))
            assert len(tokens) - len(set(tokens)) <= 1, f"channel {p} ({channel}) re-fetched more than one page"
        channel_calls = sum(r.path.endswith("/channels") for r in proxy.requests)
        assert channel_calls <= 2  # the batch's one call, and once more only if it was in flight at the kill
        assert _uploads_pages(engine) == total  # every page stored once
        assert stored_at_kill >= KILL_AFTER
        assert_youtube_matches(engine, data)


def _playlist(query: str) -> str:
    return parse_qs(query).get("playlistId", [""])[0]
