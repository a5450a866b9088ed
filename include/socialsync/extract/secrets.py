"""Scrubbing credentials out of what an upstream answers before it is stored or logged."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, urljoin, urlsplit

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
