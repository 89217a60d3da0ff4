"""Label and field selectors as the API server parses them (the subset clients send)."""

from __future__ import annotations

import re
from typing import Any

from .errors import ApiError

Requirement = tuple[str, str, frozenset[str]]

_SET = re.compile(r"^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQ = re.compile(r"^([^\s!=]+)\s*(==|!=|=)\s*([^\s,]*)$")
_KEY = re.compile(r"^(!?)([^\s!=()]+)$")


def parse_labels(selector: str | None) -> list[Requirement]:
    reqs: list[Requirement] = []
    for term in re.split(r",(?![^()]*\))", selector or ""):
        term = term.strip()
        if not term:
            continue
        if m := _SET.match(term):
            values = frozenset(v.strip() for v in m[3].split(",") if v.strip())
            reqs.append((m[1], m[2], values))
        elif m := _EQ.match(term):
            reqs.append((m[1], "!=" if m[2] == "!=" else "=", frozenset([m[3]])))
        elif m := _KEY.match(term):
            reqs.append((m[2], "!" if m[1] else "exists", frozenset()))
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
    return reqs


def labels_match(labels: dict[str, str] | None, reqs: list[Requirement]) -> bool:
    labels = labels or {}
    for key, op, values in reqs:
        present, value = key in labels, labels.get(key)
        ok = {
            "=": present and value in values,
            "in": present and value in values,
            "!=": not present or value not in values,
            "notin": not present or value not in values,
            "exists": present,
            "!": not present,
        }[op]
        if not ok:
            return False
    return True


def parse_fields(selector: str | None) -> list[Requirement]:
    reqs: list[Requirement] = []
    for term in (selector or "").split(","):
        if not term.strip():
            continue
        m = _EQ.match(term.strip())
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term!r}")
        reqs.append((m[1], "!=" if m[2] == "!=" else "=", frozenset([m[3]])))
    return reqs


def fields_match(obj: dict[str, Any], reqs: list[Requirement]) -> bool:
    for path, op, values in reqs:
        node: Any = obj
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        value = "" if node is None else str(node).lower() if isinstance(node, bool) else str(node)
        if (value in values) != (op == "="):
            return False
    return True
