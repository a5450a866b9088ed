"""A sync run's parameters (its ``conf``) checked against the network before anything is written."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from socialsync.networks.base import NetworkSpec

# A conf is stored with its run and planned in one transaction; lists past this belong in
# ``tracked_entities``, whose due profiles the scheduled runs pick up without naming them.
MAX_CONF_IDS = 1000

# ISO 8601 with an offset: the Params' JSON schema (REST, HTTP 400) and this model use the same one.
ISO_DATETIME = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?"
    r"(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)$"
)
POST_ID = r"^[A-Za-z0-9_-]{1,128}$"
# An Airflow connection id, for an entity read with a connection of its own (``{"id", "conn_id"}``).
CONN_ID = r"^[A-Za-z0-9_.-]{1,250}$"
_SHOWN = 5  # bad ids named in a message; the rest are counted


class InvalidConf(ValueError):
    """A run's conf that must be refused: the message lists every problem found."""


def _iso_time(value: object) -> object:
    # A datetime built in Python passes; from JSON only a full ISO 8601 string with an offset does
    # (pydantic alone would take unix numbers and dates, which the REST schema refuses).
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not re.fullmatch(ISO_DATETIME, value):
        raise ValueError(f"{value!r} is not a valid ISO 8601 time with an offset "
                         "(YYYY-MM-DDTHH:MM[:SS], then Z or +HH:MM; e.g. 2026-10-01T00:00:00Z)")
    return value


def _post_id(value: object) -> object:
    if value is not None and (not isinstance(value, str) or not re.fullmatch(POST_ID, value)):
        raise ValueError(f"{value!r} is not a post id (letters, digits, '_' or '-', 1 to 128 of them)")
    return value


PostId = Annotated[StrictStr | None, BeforeValidator(_post_id)]


class SyncRequest(BaseModel):
    """What a sync run was asked to do; defaults are those of a scheduled run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity_ids: list[StrictStr] | None = None
    # Entities named as ``{"id": ..., "conn_id": ...}`` in ``entity_ids``: the connection that reads each
    # (set from those items, not a conf key of its own).
    conn_ids: dict[str, str] = Field(default_factory=dict)
    scope: Literal["profile", "posts", "comments", "subscriptions", "likes", "all"] = "all"
    since_id: PostId = None
    until_id: PostId = None
    last_synced_at: Annotated[AwareDatetime | None, BeforeValidator(_iso_time)] = None
    full_refresh: StrictBool = False
    lookback_days: StrictInt = Field(3, ge=0, le=365)
    enrich: StrictBool = True
    batch_size: StrictInt | None = Field(None, ge=1, le=10_000)
    # The run fails when more than this share of its jobs failed (0: any failed job fails it).
    max_failed_percent: StrictFloat = Field(10.0, ge=0, le=100)

    @model_validator(mode="before")
    @classmethod
    def _entity_refs(cls, data: Any) -> Any:
        """``entity_ids`` items may be ids or ``{"id": ..., "conn_id": ...}``: ids stay in the list, the
        connections go to ``conn_ids``."""
        if not isinstance(data, dict) or not isinstance(data.get("entity_ids"), list):
            return data
        ids: list[Any] = []
        readers: dict[str, str] = {}
        problems = []
        for index, item in enumerate(data["entity_ids"]):
            if not isinstance(item, dict):
                ids.append(item)
                continue
            entity_id, conn_id = item.get("id"), item.get("conn_id")
            if set(item) != {"id", "conn_id"} or not isinstance(entity_id, str) or not isinstance(conn_id, str):
                problems.append(f"entity_ids[{index}]: an item is an id or {{\"id\": <id>, \"conn_id\": "
                                f"<connection>}} (got {str(item)[:60]})")
            elif not re.fullmatch(CONN_ID, conn_id):
                problems.append(f"entity_ids[{index}]: {conn_id!r} is not an Airflow connection id")
            elif readers.get(entity_id, conn_id) != conn_id:
                problems.append(f"entity_ids[{index}]: {entity_id!r} is named with two connections")
            else:
                ids.append(entity_id)
                readers[entity_id] = conn_id
        if problems:
            raise ValueError("; ".join(problems))
        return {**data, "entity_ids": ids, "conn_ids": readers}

    @field_validator("entity_ids")
    @classmethod
    def _valid_ids(cls, ids: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if not ids:
            return None  # an empty list asks for nothing in particular: the due profiles
        unique = list(dict.fromkeys(ids))  # a repeated id is one profile; the first mention keeps its place
        problems = []
        if len(unique) > MAX_CONF_IDS:
            problems.append(f"names {len(unique)} ids but a run takes at most {MAX_CONF_IDS}; "
                            "add bigger lists to tracked_entities and let the scheduled runs sync them")
        network = (info.context or {}).get("network")
        if isinstance(network, NetworkSpec):
            bad = [e for e in unique if not re.fullmatch(network.entity_id_pattern, e)]
            if bad:
                shown = ", ".join(repr(e) for e in bad[:_SHOWN])
                more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
                problems.append(f"not a valid {network.name} id (pattern {network.entity_id_pattern}): "
                                f"{shown}{more}")
        if problems:
            raise ValueError("; ".join(problems))
        return unique


def parse_sync_conf(conf: Mapping[str, Any], network: NetworkSpec) -> SyncRequest:
    """The run's request from its ``conf``; raises :class:`InvalidConf` naming every problem at once."""
    known = [name for name in SyncRequest.model_fields if name != "conn_ids"]
    problems: list[str] = []
    unknown = [_unknown(str(key), known) for key in sorted(str(k) for k in conf if k not in known)]
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)} (known keys: {', '.join(known)})")
    try:
        request = SyncRequest.model_validate({k: v for k, v in conf.items() if k in known},
                                             context={"network": network})
    except ValidationError as exc:
        problems += [_describe(error) for error in exc.errors()]
    if problems:
        raise InvalidConf(f"{network.dag_id} conf refused: " + "; ".join(problems))
    return request


def _unknown(key: str, known: Iterable[str]) -> str:
    guess = difflib.get_close_matches(key, list(known), n=1)
    return f"{key!r} (did you mean {guess[0]!r}?)" if guess else repr(key)


def _describe(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "value_error":
        return f"{field}: {message}" if field else message
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{field}: {message} (got {shown})"
