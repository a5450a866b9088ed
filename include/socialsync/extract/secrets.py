"""Scrubbing credentials out of what an upstream answers before it is stored or logged."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus, urljoin, urlsplit

import orjson

REDACTED = "***"

# Shorter values are ordinary words or ids: redacting them would mangle the text, not protect it.
MIN_SECRET_LENGTH = 6

# Query parameters that carry a credential in the URLs the networks hand back (Graph's
# ``paging.next`` repeats the ``access_token`` it was called with).
SENSITIVE_PARAMS: frozenset[str] = frozenset({
    "access_token", "client_secret", "appsecret_proof", "api_key", "apikey", "key", "token", "password",
    "refresh_token",
})

# The same names as JSON keys, except ``key``: a payload field called "key" is usually data.
_SENSITIVE_JSON_KEYS: frozenset[str] = SENSITIVE_PARAMS - {"key"}

# Parts of a connection extra's (or a header's) name that say its value is a credential.
_SECRET_NAME_PARTS: tuple[str, ...] = ("key", "token", "secret", "password", "auth")

# ``name=value`` where the name is a whole word (``after=`` and ``next_key=`` stay), the ``?``, ``&``
# and ``=`` may be URL-encoded (a URL nested in another's query), and the value ends where the
# parameter does (a trailing comma or the like goes with it: better too much redacted than too little).
_PARAM = re.compile(
    r"(?:(?<![\w.-])|(?<=%3F)|(?<=%26))(?P<name>" + "|".join(sorted(SENSITIVE_PARAMS, key=len, reverse=True)) + r")"
    r"(?P<eq>=|%3D)(?P<value>[^&#\s\"'<>\\]+?)(?=%26|&|#|\s|\"|'|<|>|\\|$)",
    re.IGNORECASE,
)


_NAMES = b"|".join(n.encode() for n in sorted(SENSITIVE_PARAMS, key=len, reverse=True))
_KEY_NAMES = b"|".join(n.encode() for n in sorted(_SENSITIVE_JSON_KEYS, key=len, reverse=True))
# ``_PARAM`` over canonical bytes: what stands before the name may also be an escape (a newline, a
# tab, a control character in a string are ``\n``, ``\t``, ``\u0001`` there).
_PARAM_BYTES = re.compile(
    rb"(?:(?<![\w.-])|(?<=\\[nrtbf])|(?<=\\u00[0-9a-f]{2})|(?<=%3F)|(?<=%26))(?P<name>" + _NAMES + rb")"
    rb"(?P<eq>=|%3D)(?P<value>[^&#\s\"'<>\\]+?)(?=%26|&|#|\s|\"|'|<|>|\\|$)",
    re.IGNORECASE,
)
# A sensitive key and its string value (a key is the one string followed by ``:``).
_KEYED = re.compile(rb'"(?:' + _KEY_NAMES + rb')":(?P<value>"(?:[^"\\]|\\.)*")', re.IGNORECASE)
_PARAM_NAMES = tuple(name.encode() for name in SENSITIVE_PARAMS)
_KEY_NEEDLES = tuple(f'"{name}":'.encode() for name in _SENSITIVE_JSON_KEYS)


def _finds(data: bytes, needle: bytes) -> Iterator[int]:
    """Every position of ``needle`` in ``data``: a C search each."""
    at = data.find(needle)
    while at != -1:
        yield at
        at = data.find(needle, at + 1)


def _param_starts(lowered: bytes) -> list[int]:
    """Where a credential parameter's name starts, right before an ``=`` (or ``%3d``) of ``lowered``:
    a C search for each ``=``, then a look at the bytes before it, not the regex engine at every byte
    (an alternation of names, case-insensitive, costs it milliseconds a page)."""
    return [at - len(name) for eq in (b"=", b"%3d") for at in _finds(lowered, eq)
            for name in _PARAM_NAMES if lowered.endswith(name, 0, at)]


def _key_starts(lowered: bytes, needles: list[bytes]) -> list[int]:
    return [at for needle in needles for at in _finds(lowered, needle)]


def _redact(pattern: re.Pattern[bytes], starts: list[int], data: bytes, redacted: bytes) -> bytes:
    """``data`` with the ``value`` group of each match of ``pattern`` at one of ``starts`` replaced by
    ``redacted`` (the pattern's lookbehind still sees the bytes before each start)."""
    found = [match for at in starts if (match := pattern.match(data, at)) is not None]
    if not found:
        return data
    out, end = [], 0
    for match in sorted(found, key=lambda m: m.start()):
        start, stop = match.span("value")
        if start < end:
            continue  # inside a value already redacted
        out += [data[end:start], redacted]
        end = stop
    out.append(data[end:])
    return b"".join(out)


_UNESCAPED = re.compile(r"[^\x00-\x1f\"\\]+")  # text JSON carries as it is (orjson escapes no other)


def is_secret_name(name: str) -> bool:
    """Whether a header or connection extra called ``name`` holds a credential (``X-Api-Key``)."""
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_NAME_PARTS)


def redirect_origin(request_url: str, location: str | None) -> str:
    """``scheme://host[:port]`` a redirect points to: what may be said of it without its path or query."""
    if not location:
        return "nowhere"
    target = urlsplit(urljoin(request_url, location))
    host = target.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = f":{target.port}" if target.port else ""
    except ValueError:  # a port that is not a number
        port = ""
    return f"{target.scheme}://{host}{port}" if target.scheme and host else "an unparseable location"


class SecretScrubber:
    """Replaces known secrets (and their URL-encoded forms) and credential query values by ``***``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: tuple[str, ...] = tuple(dict.fromkeys(
            s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH))
        forms = {form for s in self._secrets for form in (s, quote(s, safe=""), quote_plus(s))}
        # Longest first, so a secret that contains another is replaced whole.
        self._known: re.Pattern[str] | None = re.compile(
            "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))) if forms else None
        # What ``parse`` looks for in an answer's canonical bytes before it walks it: the secrets as they
        # appear there (none the encoding would escape, or there is no fast path).
        plain = all(_UNESCAPED.fullmatch(f) for f in forms)
        self._fast: tuple[bytes, ...] | None = tuple(f.encode() for f in forms) if plain else None
        self._known_bytes: re.Pattern[bytes] | None = re.compile(b"|".join(
            re.escape(f.encode()) for f in sorted(forms, key=len, reverse=True))) if forms and plain else None

    def with_secrets(self, *more: str | None) -> SecretScrubber:
        """A scrubber that also knows ``more``; this one is left as it is."""
        return SecretScrubber((*self._secrets, *more))

    def text(self, value: str) -> str:
        if self._known is not None:
            value = self._known.sub(REDACTED, value)
        # Always, even with no known secret: an upstream can echo a token this process never saw.
        if "=" in value or "%3d" in value.lower():
            value = _PARAM.sub(lambda m: f"{m['name']}{m['eq']}{REDACTED}", value)
        return value

    def json(self, value: Any) -> Any:
        """A scrubbed copy of a JSON-like value; keys stay, the input is never changed."""
        return self._json(value, key=None)

    def parse(self, body: bytes | str) -> Any:
        """A JSON answer decoded and scrubbed, as ``json`` scrubs it, without a Python step per string.

        The answer's canonical encoding (orjson's: no escapes but for quotes, backslashes and control
        characters) is searched in C for what could need scrubbing: a known secret, a credential
        parameter's name and ``=``, a sensitive key. Most answers hold none and are the decoded value
        as it is. The others (a Graph page whose ``paging.next`` repeats the token) are scrubbed in
        that encoding, with the same rules ``text`` applies to each string (the lookbehind also takes
        an escape, where a string has a newline or a tab), and decoded again. Only a secret the
        encoding would escape, or a sensitive key over a list, sends the answer to the walk.
        """
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:  # what orjson refuses and json reads (NaN, an integer past 64 bits)
            return self.json(json.loads(body))  # or the ValueError of a body that is not JSON
        if not isinstance(value, dict | list) or self._fast is None:
            return self.json(value)
        canonical = orjson.dumps(value)
        lowered = canonical.lower()
        keys = [needle for needle in _KEY_NEEDLES if needle in lowered]
        if (not any(secret in canonical for secret in self._fast) and not keys
                and not _param_starts(lowered)):
            return value
        if any(needle + b"[" in lowered for needle in keys):
            return self.json(value)  # a sensitive key over a list: its strings are redacted one by one
        scrubbed = canonical
        if self._known_bytes is not None:
            scrubbed = self._known_bytes.sub(REDACTED.encode(), scrubbed)
        if keys:
            scrubbed = _redact(_KEYED, _key_starts(scrubbed.lower(), keys), scrubbed, b'"' + REDACTED.encode() + b'"')
        scrubbed = _redact(_PARAM_BYTES, _param_starts(scrubbed.lower()), scrubbed, REDACTED.encode())
        return value if scrubbed == canonical else orjson.loads(scrubbed)

    def _json(self, value: Any, key: str | None) -> Any:
        if isinstance(value, str):
            if key is not None and key.lower() in _SENSITIVE_JSON_KEYS:
                return REDACTED
            return self.text(value)
        if isinstance(value, dict):
            return {k: self._json(v, k if isinstance(k, str) else None) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._json(v, key) for v in value]
        return value
