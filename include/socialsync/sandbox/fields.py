"""Graph API ``fields`` expressions: ``id,media.limit(5){id,caption}`` -> a nested selection with modifiers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_NAME_END = ",{}.()"


class FieldsError(ValueError):
    pass


class Selection(dict[str, "Selection | None"]):
    """Selected fields by their bare names; ``modifiers`` holds each field's ``.name(value)`` calls.

    A plain dict as far as existing callers look (``parse_fields("id") == {"id": None}``), so the
    modifiers ride along without changing what a selection compares equal to.
    """

    def __init__(self, fields: Mapping[str, Selection | None] | None = None) -> None:
        super().__init__(fields or {})
        self.modifiers: dict[str, dict[str, str]] = {}

    def modifier(self, field: str, name: str) -> str | None:
        """The value of ``field.name(value)``, None when the expression did not call it."""
        return self.modifiers.get(field, {}).get(name)


def parse_fields(expression: str) -> Selection:
    text = expression.replace(" ", "")
    selection, rest = _parse(text, 0)
    if rest != len(text):
        raise FieldsError(f"Syntax error in fields: unexpected '}}' at {rest}")
    return selection


def _parse(text: str, pos: int) -> tuple[Selection, int]:
    out = Selection()
    while pos < len(text) and text[pos] != "}":
        pos = pos + 1 if text[pos] == "," else _parse_field(text, pos, out)
    return out, pos


def _parse_field(text: str, pos: int, out: Selection) -> int:
    """One ``name[.modifier(value)...][{...}][.modifier(value)...]`` into ``out``; the position after it."""
    start = pos
    while pos < len(text) and text[pos] not in _NAME_END:
        pos += 1
    name = text[start:pos]
    if not name:
        if text[pos] == "{":
            raise FieldsError("Syntax error in fields: '{' without a field name")
        raise FieldsError(f"Syntax error in fields: unexpected {text[pos]!r} at {pos}")
    modifiers, pos = _modifiers(text, pos)
    if pos < len(text) and text[pos] == "{":
        inner, pos = _parse(text, pos + 1)
        if pos >= len(text) or text[pos] != "}":
            raise FieldsError("Syntax error in fields: missing '}'")
        out[name] = inner
        more, pos = _modifiers(text, pos + 1)  # Graph takes ``media{id}.limit(5)`` as well
        modifiers |= more
    else:
        out.setdefault(name, None)
    if modifiers:
        out.modifiers.setdefault(name, {}).update(modifiers)
    return pos


def _modifiers(text: str, pos: int) -> tuple[dict[str, str], int]:
    found: dict[str, str] = {}
    while pos < len(text) and text[pos] == ".":
        start = pos + 1
        open_at = text.find("(", start)
        close_at = text.find(")", open_at + 1) if open_at >= 0 else -1
        name = text[start:open_at] if open_at >= 0 else ""
        if not name or close_at < 0 or any(ch in _NAME_END for ch in name):
            raise FieldsError(f"Syntax error in fields: a modifier needs the form .name(value) at {pos}")
        found[name], pos = text[open_at + 1 : close_at], close_at + 1
    return found, pos


def format_fields(selection: Selection) -> str:
    """The expression of ``selection`` back, modifiers included (for the URLs of paging links)."""
    parts = []
    for name, sub in selection.items():
        calls = "".join(f".{key}({value})" for key, value in selection.modifiers.get(name, {}).items())
        parts.append(name + calls + ("" if sub is None else "{" + format_fields(sub) + "}"))
    return ",".join(parts)


def project(node: dict[str, Any], selection: Selection) -> dict[str, Any]:
    """Keep the selected fields of ``node`` (absent ones stay absent, as Graph omits empty fields)."""
    out: dict[str, Any] = {}
    for name, sub in selection.items():
        if name not in node or node[name] is None:
            continue
        value = node[name]
        if sub is not None and isinstance(value, dict) and "data" in value:
            # An edge keeps its paging: only its items are projected.
            value = {**value, "data": [project(item, sub) for item in value["data"]]}
        elif sub is not None and isinstance(value, dict):
            value = project(value, sub)
        out[name] = value
    return out
