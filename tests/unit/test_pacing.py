from __future__ import annotations

from socialsync.extract.pacing import RequestPacer


def test_no_pause_below_the_threshold_then_growing_to_the_maximum() -> None:
    pacer = RequestPacer(slow_down_at=80, max_pause_s=10.0)
    assert pacer.pause_for(0) == pacer.pause_for(79) == 0.0
    assert pacer.pause_for(80) == 0.5  # a small floor as soon as the threshold is crossed
    assert pacer.pause_for(90) == 5.0
    assert pacer.pause_for(100) == pacer.pause_for(140) == 10.0


def test_pauses_follow_the_usage_the_api_reported() -> None:
    slept: list[float] = []
    pacer = RequestPacer(slow_down_at=50, max_pause_s=4.0, sleep=slept.append)
    pacer.before_request()
    pacer.observe(75)
    pacer.before_request()
    pacer.observe(10)
    pacer.before_request()
    assert slept == [2.0]
    assert pacer.paused_s == 2.0
