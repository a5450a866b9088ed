"""socialsync found like a provider: its provider info, its connection types' forms, its plugin entry point.

The forms are checked where Airflow reads them (the providers manager's field list and field behaviours),
and against the code: every extra a client or task reads has a field, with the default the code applies.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import entry_points
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from airflow.models.connection import Connection

from socialsync.airflow import connections, hooks
from socialsync.connection_types import CALL_FIELDS, INSTAGRAM, ML, TIKTOK, VISION, YOUTUBE, ConnectionType
from socialsync.extract import calls, retrying
from socialsync.extract.budget import RateBudget
from socialsync.networks.instagram import client as instagram
from socialsync.networks.tiktok import client as tiktok
from socialsync.networks.youtube import client as youtube
from socialsync.provider import get_provider_info

SOURCE = Path(connections.__file__).parents[1]
NETWORK_TYPES = {"instagram": INSTAGRAM, "youtube": YOUTUBE, "tiktok": TIKTOK}
READ = re.compile(r"options(?:\.get\(|\[)\"([a-z_]+)\"")


def test_the_provider_info_is_valid_for_airflow_and_found_through_its_entry_point() -> None:
    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    found = {e.value for e in entry_points(group="apache_airflow_provider")}
    assert "socialsync.provider:get_provider_info" in found
    plugins = {e.name: e.value for e in entry_points(group="airflow.plugins")}
    assert plugins["socialsync"] == "socialsync.airflow.plugin:SocialsyncPlugin"
    assert {t["connection-type"] for t in info["connection-types"]} == {
        "socialsync_instagram", "socialsync_youtube", "socialsync_tiktok", "socialsync_ml", "socialsync_vision"}


def test_the_providers_manager_lists_each_type_its_hook_fields_and_behaviour() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "socialsync" in manager.providers
    widgets, behaviours = manager.connection_form_widgets, manager.field_behaviours
    for kind in (INSTAGRAM, YOUTUBE, TIKTOK, ML, VISION):
        hook = manager.hooks[kind.conn_type]  # what `airflow providers hooks` lists
        assert hook is not None and hook.hook_name == kind.hook_name, kind.conn_type
        for field in kind.fields:
            widget = widgets[f"extra__{kind.conn_type}__{field.name}"]
            assert widget.field["schema"]["title"] == field.label
            assert widget.field["value"] is None and field.description in widget.field["description"]
            assert widget.is_sensitive == field.secret
        behaviour = behaviours[kind.conn_type]
        assert behaviour["relabeling"] == kind.relabeling and set(behaviour["hidden_fields"]) == set(kind.hidden)
    assert widgets["extra__socialsync_ml__X-Api-Key"].is_sensitive


@pytest.mark.parametrize("network", sorted(NETWORK_TYPES))
def test_every_extra_a_client_reads_has_a_form_field(network: str) -> None:
    """The options the shared call layer, the rate budget, the quota and the network's client read."""
    shared = [SOURCE / "extract" / "calls.py", SOURCE / "extract" / "budget.py", SOURCE / "airflow" / "tasks.py"]
    own = sorted((SOURCE / "networks" / network).glob("*.py"))
    read = {name for path in [*shared, *own] for name in READ.findall(path.read_text())}
    read |= set(re.findall(r"_page_size\(options, \"([a-z_]+)\"", (SOURCE / "networks" / network / "client.py")
                           .read_text()))
    fields = {f.name for f in NETWORK_TYPES[network].fields}
    # TikTok's client key is the form's Login field (an http connection may keep it as a client_key extra).
    assert read - {"login", "client_key"} <= fields, read - fields


def _default(kind: ConnectionType, name: str) -> object:
    return next(f.default for f in kind.fields if f.name == name)


def test_the_forms_show_the_defaults_the_code_applies() -> None:
    budget = RateBudget.from_options({}, instagram.DEFAULT_IN_FLIGHT)
    assert _default(INSTAGRAM, "max_in_flight") == instagram.DEFAULT_IN_FLIGHT
    assert _default(INSTAGRAM, "max_pause_s") == budget.max_pause_s
    assert _default(INSTAGRAM, "slow_down_at_percent") == budget.slow_down_at
    assert _default(INSTAGRAM, "max_wait_s") == retrying.MAX_WAIT_S
    assert _default(INSTAGRAM, "max_list_items") == calls.DEFAULT_MAX_LIST_ITEMS
    assert _default(INSTAGRAM, "full_list_days") == calls.DEFAULT_FULL_LIST_DAYS
    assert (_default(INSTAGRAM, "page_size"), _default(INSTAGRAM, "comments_page_size"),
            _default(INSTAGRAM, "inline_replies")) == (instagram.MAX_MEDIA_PAGE, instagram.MAX_COMMENTS_PAGE,
                                                        instagram.REPLIES_PAGE)
    assert (_default(YOUTUBE, "page_size"), _default(YOUTUBE, "comments_page_size")) == (
        youtube.MAX_UPLOADS_PAGE, youtube.MAX_COMMENTS_PAGE)
    assert (_default(TIKTOK, "page_size"), _default(TIKTOK, "horizon_days")) == (tiktok.MAX_PAGE,
                                                                                   tiktok.DEFAULT_HORIZON_DAYS)
    assert all(f in kind.fields for kind in NETWORK_TYPES.values() for f in CALL_FIELDS)


def test_a_connection_of_a_socialsync_type_from_its_uri_builds_a_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """``AIRFLOW_CONN_*`` URIs (and ``airflow connections add --conn-uri``): the type's scheme with ``-``
    for ``_``, the base URL URL-encoded as the host, the extras as the query."""
    uri = ("socialsync-instagram://:graph-token-0123456789@https%3A%2F%2Fgraph.facebook.com%2Fv21.0/"
           "?ig_user_id=17841400000000000&page_size=50&max_in_flight=8&quota_units=")
    monkeypatch.setenv("AIRFLOW_CONN_INSTAGRAM_API", uri)
    conn = Connection(conn_id="instagram_api", uri=uri)
    assert conn.conn_type == "socialsync_instagram"
    credentials = hooks.InstagramApiHook().get_conn()
    assert credentials.base_url == "https://graph.facebook.com/v21.0"
    assert credentials.token == "graph-token-0123456789"
    # An empty field is unset (the quota is the API's own), whatever the form or URI left in it.
    assert credentials.options == {"ig_user_id": "17841400000000000", "page_size": "50", "max_in_flight": "8"}
    client = instagram.InstagramClient(credentials)
    assert (client.page_size, client.ig_user_id) == (50, "17841400000000000")
    client.close()


def test_extras_saved_under_the_forms_prefixed_names_are_read_as_the_field() -> None:
    conn = Connection(conn_id="t", conn_type="socialsync_tiktok", host="https://open.tiktokapis.com/v2",
                      extra=json.dumps({"extra__socialsync_tiktok__horizon_days": 30, "page_size": "",
                                        "max_attempts": 4}))
    assert connections.extras(conn) == {"horizon_days": 30, "max_attempts": 4}
