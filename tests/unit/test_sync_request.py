"""A run's conf is refused with one message naming every problem, before anything is written."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from socialsync.extract.request import (
    ISO_DATETIME,
    MAX_CONF_IDS,
    InvalidConf,
    SyncRequest,
    parse_sync_conf,
)
from socialsync.networks import get_network
from socialsync.networks.base import NetworkSpec

INSTAGRAM = get_network("instagram")  # numeric profile ids


def _refused(conf: dict[str, Any], network: NetworkSpec = INSTAGRAM) -> str:
    with pytest.raises(InvalidConf) as caught:
        parse_sync_conf(conf, network)
    return str(caught.value)


def test_an_empty_conf_is_a_scheduled_run() -> None:
    request = parse_sync_conf({}, INSTAGRAM)
    assert request == SyncRequest()
    assert (request.entity_ids, request.scope, request.lookback_days, request.enrich) == (None, "all", 3, True)
    assert (request.batch_size, request.max_failed_percent, request.full_refresh) == (None, 10.0, False)


def test_a_full_conf_is_read() -> None:
    request = parse_sync_conf({
        "entity_ids": ["178400000000000002", "178400000000000001", "178400000000000002"],
        "scope": "posts", "since_id": "1790_a-b", "until_id": None,
        "last_synced_at": "2026-10-01T02:00:00+02:00", "full_refresh": True, "lookback_days": 0,
        "enrich": False, "batch_size": 50, "max_failed_percent": 0,
    }, INSTAGRAM)
    assert request.entity_ids == ["178400000000000002", "178400000000000001"]  # deduplicated, order kept
    assert request.last_synced_at == datetime(2026, 10, 1, tzinfo=UTC)
    assert (request.scope, request.since_id, request.batch_size, request.max_failed_percent) == ("posts", "1790_a-b",
                                                                                                   50, 0.0)


def test_the_ui_form_sends_every_param_with_its_empty_values() -> None:
    form = {"entity_ids": None, "scope": "all", "since_id": None, "until_id": None, "last_synced_at": None,
            "full_refresh": False, "lookback_days": 3, "enrich": True, "batch_size": None,
            "max_failed_percent": 10}
    assert parse_sync_conf(form, INSTAGRAM) == SyncRequest()
    assert parse_sync_conf({"entity_ids": []}, INSTAGRAM).entity_ids is None  # nothing named: the due ones


def test_an_unknown_key_is_refused_with_the_known_ones_named() -> None:
    message = _refused({"entity_idz": ["178400000000000001"]})
    assert "unknown key(s) 'entity_idz' (did you mean 'entity_ids'?)" in message
    assert "known keys: entity_ids, scope, since_id" in message and "max_failed_percent" in message


@pytest.mark.parametrize(
    "value",
    ["2026-13-45T99:99Z", "2026-02-31T00:00:00Z", "2026-10-01T24:00Z", "2026-10-01T00:60Z", "2026-10-01",
     "2026-10-01T00:00:00", "last tuesday", "1700000000", 1700000000, "2026-10-01T00:00Z\n"],
)
def test_a_time_that_is_not_real_aware_iso_8601_is_refused(value: object) -> None:
    assert "last_synced_at" in _refused({"last_synced_at": value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-10-01T00:00Z", datetime(2026, 10, 1, tzinfo=UTC)),
        ("2026-10-01 05:30:00.5+0530", datetime(2026, 10, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2026-12-31T23:59:59-01:00", datetime(2027, 1, 1, 0, 59, 59, tzinfo=UTC)),
    ],
)
def test_an_iso_time_with_an_offset_is_read(value: str, expected: datetime) -> None:
    parsed = parse_sync_conf({"last_synced_at": value}, INSTAGRAM).last_synced_at
    assert parsed == expected and parsed is not None and parsed.utcoffset() is not None
    assert re.fullmatch(ISO_DATETIME, value)  # the REST schema takes it too


def test_the_rest_schema_pattern_refuses_the_issue_time() -> None:
    assert not re.search(ISO_DATETIME, "2026-13-45T99:99Z")


@pytest.mark.parametrize("ids", [[".."], ["../me"], ["178400000000000001?fields=x"], ["abc"], [""], ["1\n"]])
def test_an_id_that_is_not_one_of_the_network_is_refused(ids: list[str]) -> None:
    message = _refused({"entity_ids": ["178400000000000001", *ids]})
    assert "not a valid instagram id" in message and repr(ids[0]) in message
    assert "'178400000000000001'" not in message


def test_bad_ids_are_named_first_few_then_counted() -> None:
    message = _refused({"entity_ids": [f"bad{i}" for i in range(12)]})
    assert "not a valid instagram id" in message
    assert "'bad0'" in message and "'bad4'" in message and "'bad5'" not in message and "and 7 more" in message


def test_the_id_pattern_is_the_networks() -> None:
    other = replace(INSTAGRAM, name="other", entity_id_pattern=NetworkSpec.entity_id_pattern)
    assert parse_sync_conf({"entity_ids": ["user_name-1"]}, other).entity_ids == ["user_name-1"]
    assert "not a valid other id" in _refused({"entity_ids": [".."]}, other)


def test_more_ids_than_a_run_takes_are_refused_with_the_bound() -> None:
    ids = [str(178400000000000000 + i) for i in range(MAX_CONF_IDS + 1)]
    message = _refused({"entity_ids": ids})
    assert f"at most {MAX_CONF_IDS}" in message and "tracked_entities" in message
    assert ids[0] not in message  # the message stays short, whatever the list
    assert parse_sync_conf({"entity_ids": ids[:MAX_CONF_IDS] * 2}, INSTAGRAM).entity_ids == ids[:MAX_CONF_IDS]


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({"scope": "everything"}, "scope"),
        ({"since_id": "../x"}, "since_id"),
        ({"until_id": "a" * 129}, "until_id"),
        ({"since_id": 17}, "since_id"),
        ({"full_refresh": "yes"}, "full_refresh"),
        ({"enrich": 1}, "enrich"),
        ({"lookback_days": 366}, "lookback_days"),
        ({"lookback_days": "3"}, "lookback_days"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 10_001}, "batch_size"),
        ({"max_failed_percent": 100.5}, "max_failed_percent"),
        ({"max_failed_percent": True}, "max_failed_percent"),
        ({"entity_ids": "178400000000000001"}, "entity_ids"),
        ({"entity_ids": [178400000000000001]}, "entity_ids.0"),
    ],
)
def test_a_bad_field_is_refused_by_name(conf: dict[str, Any], field: str) -> None:
    assert f"{field}: " in _refused(conf)


def test_every_problem_is_in_one_message() -> None:
    message = _refused({"entity_idz": ["1"], "scope": "everything", "entity_ids": [".."],
                        "last_synced_at": "2026-13-45T99:99Z", "batch_size": 0})
    assert message.startswith("instagram_sync conf refused: ")
    for part in ("'entity_idz'", "scope: ", "entity_ids: ", "last_synced_at: ", "batch_size: "):
        assert part in message


def test_the_request_is_frozen_and_refuses_extra_fields_itself() -> None:
    request = SyncRequest()
    with pytest.raises(ValueError):
        request.scope = "posts"  # type: ignore[misc]
    with pytest.raises(ValueError):
        SyncRequest(entity_idz=["1"])  # type: ignore[call-arg]
    naive = datetime(2026, 10, 1)  # no time zone: the point of the test
    with pytest.raises(ValueError):
        SyncRequest(last_synced_at=naive)
    aware = datetime(2026, 10, 1, tzinfo=timezone(timedelta(hours=2)))
    assert SyncRequest(last_synced_at=aware).last_synced_at == aware
