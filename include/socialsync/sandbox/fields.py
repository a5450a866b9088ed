"""Graph API ``fields`` expressions: ``id,caption,children{id,media_url}`` -> a nested selection."""

from __future__ import annotations

from typing import Any

Selection = dict[str, "Selection | None"]


class FieldsError(ValueError):
    pass


def parse_fields(expression: str) -> Selection:
    selection, rest = _parse(expression.replace(" ", ""), 0)
    if rest != len(expression.replace(" ", "")):
        raise FieldsError(f"Syntax error in fields: unexpected '}}' at {rest}")
    return selection


def _parse(text: str, pos: int) -> tuple[Selection, int]:
    out: Selection = {}
    name = ""
    while pos < len(text):
        ch = text[pos]
        if ch == ",":
            if name:
                out.setdefault(name, None)
            name, pos = "", pos + 1
        elif ch == "{":
            if not name:
                raise FieldsError("Syntax error in fields: '{' without a field name")
            inner, pos = _parse(text, pos + 1)
            if pos >= len(text) or text[pos] != "}":
                raise FieldsError("Syntax error in fields: missing '}'")
            out[name], name, pos = inner, "", pos + 1
        elif ch == "}":
            break
        else:
            name += ch
            pos += 1
    if name:
        out.setdefault(name, None)
    return out, pos


def project(node: dict[str, Any], selection: Selection) -> dict[str, Any]:
    """Keep the selected fields of ``node`` (absent ones stay absent, as Graph omits empty fields)."""
    out: dict[str, Any] = {}
    for name, sub in selection.items():
        if name not in node or node[name] is None:
            continue
        value = node[name]
        if sub is not None and isinstance(value, dict) and "data" in value:
            value = {"data": [project(item, sub) for item in value["data"]]}
        elif sub is not None and isinstance(value, dict):
            value = project(value, sub)
        out[name] = value
    return out
