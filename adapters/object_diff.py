"""Field-by-field comparison of a rendered (declared) Kubernetes object with the live one.

Pure functions, no I/O; check_live_objects.py fetches the objects. A difference is a JSON
pointer (RFC 6901) into the object with the live and the declared value.

What is compared, and how the API server's own additions are told apart from hand edits:

1. Only what the manifest sets. Fields the API server or a controller fills in are never
   compared because the manifest never sets them: `status`, `metadata.managedFields`,
   `resourceVersion`, `uid`, `generation`, `creationTimestamp`, defaulted fields
   (`strategy`, `revisionHistoryLimit`, `terminationMessagePath`, `imagePullPolicy`, a
   Service's `clusterIP` and `sessionAffinity`, a volume's `defaultMode`, ...).
   Of `metadata` only `labels` and `annotations` are compared, and in them only the keys the
   manifest sets: `deployment.kubernetes.io/revision`,
   `kubectl.kubernetes.io/last-applied-configuration` and other controllers' keys are not
   drift, while a removed or changed chart label is.
2. Exception to 1: the content of a ConfigMap or Secret (`data`, `binaryData`, and a
   Secret's `stringData`, folded into `data` as the API server does) is compared key by
   key both ways: a key added by hand is drift too.
3. Lists belong to the manifest: an element the manifest does not have (an env var added
   by hand) is drift. Lists whose elements carry a merge key (containers, env, volumes by
   `name`; volumeMounts by `mountPath`; container ports by `containerPort`, Service ports by
   `port`; as Kubernetes' strategic merge patch keys them) are matched by that key, others
   by position (so are lists in which a key value repeats, such as a NetworkPolicy's port 53
   over UDP and TCP); within a matched element rules 1 and 4-6 apply again. The pointer of a
   matched or missing element uses its index in the manifest, of an extra one its index live.
4. A declared empty value (null, "", false, 0, {} or []) equals a field that is absent
   live: the API server drops empty optional fields (`omitempty`) and helm drops nulls.
5. Quantities in `resources.limits` / `requests` (and `requests` / `limits` / `capacity` /
   `hard` elsewhere) are compared by value: `1000m` equals `1`, `1Gi` equals `1024Mi`, as
   the API server stores them in canonical form.
6. Numbers compare by value (`1` equals `1.0`), never equal to a string or a boolean.

Secret content never leaves this module as text: every value under a Secret's `data` or
`stringData` is shown as `sha256:<first 16 hex digits of the digest of its bytes>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
"""A field that is absent (on one side of a difference)."""

# Kubernetes' strategic-merge keys of the lists charts render (patchMergeKey tags).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
CONTENT_FIELDS = ("data", "binaryData")
QUANTITY_PARENTS = ("limits", "requests", "capacity", "hard")
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([eE][+-]?[0-9]+|[a-zA-Z]*)$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -3, "u": -2, "m": -1, "": 0, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}


@dataclass(frozen=True)
class Difference:
    path: str
    live: Any
    declared: Any


def escape(segment: str | int) -> str:
    return str(segment).replace("~", "~0").replace("/", "~1")


def quantity_value(text: Any) -> Decimal | None:
    """The value of a Kubernetes quantity (`100m`, `1.5Gi`, `2e3`, 3), None if it is none."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        return None
    match = _QUANTITY.match(str(text).strip())
    if not match:
        return None
    number, suffix = match.groups()
    try:
        amount = Decimal(number)
    except InvalidOperation:
        return None
    if suffix in _BINARY:
        return amount * 1024 ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return amount * Decimal(1000) ** _DECIMAL[suffix]
    if suffix[:1] in ("e", "E"):
        return amount * Decimal(10) ** int(suffix[1:])
    return None


def _empty(value: Any) -> bool:
    """null, "", false, 0, {} or []: what the API server drops from an optional field."""
    if value is None or isinstance(value, bool):
        return value is None or value is False
    if isinstance(value, int | float):
        return value == 0
    return value in ("", {}, [])


def _same_scalar(live: Any, declared: Any, quantity: bool) -> bool:
    if quantity:
        a, b = quantity_value(live), quantity_value(declared)
        if a is not None and b is not None:
            return a == b
    if isinstance(live, bool) or isinstance(declared, bool):
        return isinstance(live, bool) and isinstance(declared, bool) and live == declared
    if isinstance(live, int | float) and isinstance(declared, int | float):
        return live == declared
    return type(live) is type(declared) and live == declared


def _list_key(field: str | None, items: list[Any]) -> str | None:
    key: str | None
    if field == "ports":  # container ports merge on containerPort, Service ports on port
        dicts = [i for i in items if isinstance(i, dict)]
        key = "containerPort" if any("containerPort" in i for i in dicts) else "port"
    else:
        key = MERGE_KEYS.get(field or "")
    if key is None:
        return None
    values = [i.get(key) if isinstance(i, dict) else None for i in items]
    # A key that repeats (a NetworkPolicy's port 53 over UDP and TCP) identifies nothing.
    unique = len({json.dumps(v, sort_keys=True) for v in values}) == len(values)
    return key if None not in values and unique else None


def compare(kind: str, live: dict[str, Any], declared: dict[str, Any]) -> list[Difference]:
    """Every difference of `live` from `declared` by the module's rules, in document order."""
    found: list[Difference] = []
    declared, live = _fold_string_data(kind, declared), dict(live)
    meta_declared = declared.get("metadata") or {}
    meta_live = live.get("metadata") or {}
    for part in ("labels", "annotations"):
        if part in meta_declared:
            _compare(
                meta_live.get(part, MISSING), meta_declared[part], f"/metadata/{part}", part, found
            )
    for key, value in declared.items():
        if key in ("apiVersion", "kind", "metadata", "status"):
            continue
        path = f"/{escape(key)}"
        if key in CONTENT_FIELDS and kind in ("ConfigMap", "Secret"):
            _compare_content(live.get(key) or {}, value or {}, path, found)
        else:
            _compare(live.get(key, MISSING), value, path, key, found)
    for key in CONTENT_FIELDS:
        if kind in ("ConfigMap", "Secret") and key not in declared and live.get(key):
            _compare_content(live[key], {}, f"/{key}", found)
    return found


def _fold_string_data(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret's `stringData` as the API server stores it: base64 in `data`."""
    if kind != "Secret" or not obj.get("stringData"):
        return obj
    folded = dict(obj)
    data = dict(folded.get("data") or {})
    for key, value in (folded.pop("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    folded["data"] = data
    return folded


def _compare_content(live: Any, declared: Any, path: str, found: list[Difference]) -> None:
    live = live if isinstance(live, dict) else {}
    declared = declared if isinstance(declared, dict) else {}
    for key in sorted(declared.keys() | live.keys()):
        a, b = live.get(key, MISSING), declared.get(key, MISSING)
        if a is MISSING and b is not MISSING and _empty(b):
            continue
        if a != b:
            found.append(Difference(f"{path}/{escape(key)}", a, b))


def _compare(
    live: Any, declared: Any, path: str, field: str | None, found: list[Difference]
) -> None:
    if declared is None:
        return  # helm drops nulls: the manifest does not set this field
    if live is MISSING or live is None:
        if not _empty(declared):
            found.append(Difference(path, MISSING, declared))
        return
    if isinstance(declared, dict):
        if not isinstance(live, dict):
            found.append(Difference(path, live, declared))
            return
        for key, value in declared.items():
            _compare(live.get(key, MISSING), value, f"{path}/{escape(key)}", key, found)
        return
    if isinstance(declared, list):
        if not isinstance(live, list):
            found.append(Difference(path, live, declared))
            return
        _compare_list(live, declared, path, field, found)
        return
    parent = path.rsplit("/", 2)[-2] if path.count("/") >= 2 else ""
    if not _same_scalar(live, declared, parent in QUANTITY_PARENTS):
        found.append(Difference(path, live, declared))


def _compare_list(
    live: list[Any], declared: list[Any], path: str, field: str | None, found: list[Difference]
) -> None:
    key = _list_key(field, declared)
    if key is not None and _list_key(field, live) == key:
        by_key = {item[key]: (i, item) for i, item in enumerate(live)}
        wanted = {item[key] for item in declared}
        for i, item in enumerate(declared):
            match = by_key.get(item[key])
            if match is None:
                found.append(Difference(f"{path}/{i}", MISSING, item))
            else:
                _compare(match[1], item, f"{path}/{i}", None, found)
        for i, item in enumerate(live):
            if item[key] not in wanted:
                found.append(Difference(f"{path}/{i}", item, MISSING))
        return
    for i, item in enumerate(declared):
        if i < len(live):
            _compare(live[i], item, f"{path}/{i}", None, found)
        else:
            found.append(Difference(f"{path}/{i}", MISSING, item))
    for i in range(len(declared), len(live)):
        found.append(Difference(f"{path}/{i}", live[i], MISSING))


# --- showing values -------------------------------------------------------------------------
def is_secret_content(kind: str, path: str) -> bool:
    return kind == "Secret" and path.split("/")[1:2] in (["data"], ["stringData"])


def digest(value: Any) -> str:
    """How Secret content is shown: the digest of the bytes it stands for."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = value.encode()
    else:
        raw = json.dumps(value, sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:16]


def shown(kind: str, path: str, value: Any) -> str | None:
    """A value as a drift record carries it: JSON text, a digest for Secret content, None
    when absent."""
    if value is MISSING:
        return None
    if is_secret_content(kind, path):
        if isinstance(value, dict):  # a whole `data` map
            return json.dumps({k: digest(v) for k, v in sorted(value.items())})
        return digest(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


SHORT = 60


def brief(kind: str, path: str, live: Any, declared: Any) -> str:
    """`live 7, declared 1`; a long or multi-line text shows its first differing line."""
    if _long_texts(kind, path, live, declared):
        la, lb = live.splitlines() or [""], declared.splitlines() or [""]
        line = next(
            (i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y),
            min(len(la), len(lb)),
        )
        x = json.dumps(la[line]) if line < len(la) else "(end)"
        y = json.dumps(lb[line]) if line < len(lb) else "(end)"
        return f"differs at line {line + 1}: live {_cut(x)}, declared {_cut(y)}"
    a, b = shown(kind, path, live), shown(kind, path, declared)
    return (
        f"live {_cut(a) if a is not None else '(absent)'}, "
        f"declared {_cut(b) if b is not None else '(absent)'}"
    )


def _long_texts(kind: str, path: str, live: Any, declared: Any) -> bool:
    if not (isinstance(live, str) and isinstance(declared, str)):
        return False
    if is_secret_content(kind, path):
        return False
    return "\n" in live + declared or max(len(live), len(declared)) > SHORT


def _cut(text: str) -> str:
    return text if len(text) <= SHORT + 20 else text[: SHORT + 17] + "..."
