"""SecretScrubber: credentials an upstream echoes back never reach a table or a log line."""

from __future__ import annotations

import copy
import json
from urllib.parse import quote, quote_plus

import pytest

from socialsync.extract.secrets import REDACTED, SecretScrubber, is_secret_name, redirect_origin

TOKEN = "EAABsbCS1iHgBO7ZBxZC+/k=tok"
NEXT = f"https://graph.facebook.com/v21.0/1/media?access_token={TOKEN}&after=QVFHUjZA2&limit=25"


def test_a_token_quoted_in_an_error_message_is_redacted() -> None:
    text = SecretScrubber([TOKEN]).text(f"Invalid OAuth access token - Cannot parse access token: {TOKEN}")
    assert TOKEN not in text
    assert text == "Invalid OAuth access token - Cannot parse access token: ***"


def test_a_paging_next_link_loses_its_token_but_keeps_its_cursor() -> None:
    text = SecretScrubber([TOKEN]).text(NEXT)
    assert text == "https://graph.facebook.com/v21.0/1/media?access_token=***&after=QVFHUjZA2&limit=25"


def test_url_encoded_forms_of_a_secret_are_redacted() -> None:
    scrub = SecretScrubber([TOKEN])
    for form in (quote(TOKEN, safe=""), quote_plus(TOKEN)):
        assert scrub.text(f"upstream said: bad credential {form}.") == "upstream said: bad credential ***."


def test_an_unknown_token_in_a_sensitive_parameter_is_still_redacted() -> None:
    scrub = SecretScrubber([])
    text = scrub.text("GET https://x.example/v1/a?fields=id&ACCESS_TOKEN=other-token-1 failed; "
                      "retry with client_secret=s3cr3t#frag and apikey=abc123 and key=k1 token=t0k")
    assert text == ("GET https://x.example/v1/a?fields=id&ACCESS_TOKEN=*** failed; "
                    "retry with client_secret=***#frag and apikey=*** and key=*** token=***")


def test_a_token_in_a_url_nested_in_another_urls_query_is_redacted() -> None:
    nested = "https://a.example/login?next=" + quote("https://b.example/cb?access_token=zzzzzzz9&x=1", safe="")
    assert "zzzzzzz9" not in SecretScrubber([]).text(nested)
    assert SecretScrubber([]).text(nested).endswith("access_token%3D***%26x%3D1")


def test_cursors_and_ordinary_parameters_are_left_alone() -> None:
    text = "https://graph.example/v21.0/1/media?after=QVFHUjZA2&before=QVFIUk&monkey=banana&next_key=n1"
    assert SecretScrubber(["unrelated-secret"]).text(text) == text


def test_nested_json_is_scrubbed_and_the_input_is_not_mutated() -> None:
    page = {
        "data": [{"id": "1", "caption": f"leaked {TOKEN}", "like_count": 3, "ok": True, "gone": None}],
        "paging": {"cursors": {"before": "QVFIUk", "after": "QVFHUjZA2"}, "next": NEXT},
        "error": {"message": f"token {quote_plus(TOKEN)} expired", "access_token": "someone-elses"},
        "debug": ("a", TOKEN),
    }
    before = copy.deepcopy(page)
    scrubbed = SecretScrubber([TOKEN]).json(page)
    assert page == before
    assert TOKEN not in repr(scrubbed) and quote_plus(TOKEN) not in repr(scrubbed)
    assert "someone-elses" not in repr(scrubbed)
    assert scrubbed["data"] == [{"id": "1", "caption": "leaked ***", "like_count": 3, "ok": True, "gone": None}]
    assert scrubbed["paging"]["cursors"] == {"before": "QVFIUk", "after": "QVFHUjZA2"}
    assert scrubbed["paging"]["next"].endswith("access_token=***&after=QVFHUjZA2&limit=25")
    assert scrubbed["error"] == {"message": "token *** expired", "access_token": "***"}
    assert scrubbed["debug"] == ["a", "***"]


def test_short_and_empty_secrets_are_ignored() -> None:
    scrub = SecretScrubber(["", None, "abc", "12345"])
    assert scrub.text("abc 12345 and abcde") == "abc 12345 and abcde"


def test_with_secrets_adds_to_a_copy() -> None:
    base = SecretScrubber(["first-secret"])
    both = base.with_secrets("second-secret", None)
    assert both.text("first-secret second-secret") == "*** ***"
    assert base.text("second-secret") == "second-secret"


def test_a_secret_containing_another_is_replaced_whole() -> None:
    assert SecretScrubber(["abcdef", "abcdefghij"]).text("x abcdefghij y") == "x *** y"


def test_secret_names() -> None:
    assert all(map(is_secret_name, ["X-Api-Key", "Authorization", "refresh_token", "client_secret", "PASSWORD"]))
    assert not any(map(is_secret_name, ["page_size", "Content-Type", "timeout"]))


def test_a_redirect_is_described_by_its_origin_only() -> None:
    base = "http://127.0.0.1:9000/ml/v1/jobs/1"
    assert redirect_origin(base, "https://u:p@evil.example:8443/x?access_token=t0k3n-xyz") == \
        "https://evil.example:8443"
    assert redirect_origin(base, "/elsewhere?key=1") == "http://127.0.0.1:9000"
    assert redirect_origin(base, None) == "nowhere"


PARSED = [
    {"data": [{"id": "1", "text": "nothing to hide", "n": 3, "ok": True, "none": None}], "paging": {}},
    {"data": [{"text": "line one\naccess_token=EAAB-leaked-value&x=1"}]},  # a parameter after an escape
    {"data": [{"text": "see https://x.test/?a=1&Access_Token%3Dabc123456"}]},
    {"paging": {"next": "https://graph.test/v21.0/1/media?after=QVFI&access_token=not-the-known-one"}},
    {"error": {"message": "Invalid OAuth access token - s3cr3t-token-value"}},
    {"error": {"message": "token in a quote: \"s3cr3t-token-value\""}},
    {"data": {"ACCESS_TOKEN": "short", "Client_Secret": 12, "refresh_token": "abcdefgh"}},
    {"data": [{"caption": "ünïcode and emoji \U0001f600 and \\ backslashes \t tabs", "key": "value"}]},
    {"data": [{"caption": "s3cr3t%2Dtoken"}, {"caption": "s3cr3t-token-value"}]},
    [1, "s3cr3t-token-value", {"x": "token=abcdef"}],
    {"access_token": ["abcdefgh", "ijklmnop"], "other": "x"},  # a sensitive key over a list: walked
    {"m": "tab\ttoken=abcdefg end", "n": "\u0001key=abcdefgh", "o": "quote\"api_key=abcdefgh\"", "p": "monkey=1"},
    {"paging": {"next": "https://g.test/c?access_token=s3cr3t-token-value&after=A"}, "data": [{"token": "abcdefgh"}]},
]


@pytest.mark.parametrize("value", PARSED)
def test_parse_answers_what_decoding_then_walking_answers(value: object) -> None:
    scrubber = SecretScrubber(["s3cr3t-token-value"])
    body = json.dumps(value).encode()
    assert scrubber.parse(body) == scrubber.json(json.loads(body))
    assert scrubber.parse(json.dumps(value, ensure_ascii=False)) == scrubber.json(value)


def test_parse_reads_what_orjson_refuses_and_refuses_what_is_not_json() -> None:
    scrubber = SecretScrubber(["s3cr3t-token-value"])
    huge = b'{"id": 123456789012345678901234567890, "text": "s3cr3t-token-value", "x": NaN}'
    parsed = scrubber.parse(huge)
    assert parsed["id"] == 123456789012345678901234567890 and parsed["text"] == REDACTED
    with pytest.raises(ValueError):
        scrubber.parse(b"<html>not json</html>")
    assert scrubber.parse(b'"s3cr3t-token-value"') == REDACTED


def test_a_secret_json_would_escape_still_gets_scrubbed() -> None:
    scrubber = SecretScrubber(['quote"in-secret'])  # no fast path: every answer is walked
    assert scrubber.parse(json.dumps({"m": 'a quote"in-secret here'})) == {"m": f"a {REDACTED} here"}
