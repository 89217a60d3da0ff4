"""JSON patch, merge patch, strategic merge patch and a single-manager server-side apply.

Strategic merge needs each list's merge key, which the real server reads from Go struct tags;
the stand-in keeps a table of the ones that chart workloads and clients actually touch.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError, invalid

# field name -> merge key, from the `patchMergeKey` tags of the core/apps types.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
PRIMITIVE_MERGE = {"finalizers"}  # lists of strings merged as sets


def merge_key(field: str | None, items: list[Any]) -> str | None:
    if field == "ports":  # container ports merge on containerPort, Service ports on port
        dicts = [i for i in items if isinstance(i, dict)]
        return "containerPort" if any("containerPort" in i for i in dicts) else "port"
    return MERGE_KEYS.get(field or "")


PATCHES = {
    "application/json-patch+json": lambda doc, patch: json_patch(doc, patch),
    "application/merge-patch+json": lambda doc, patch: merge_patch(doc, patch),
    "application/strategic-merge-patch+json": lambda doc, patch: strategic_merge(doc, patch),
}


def by_content_type(content_type: str, doc: Any, patch: Any) -> Any:
    """A PATCH request's body applied to `doc` by its Content-Type (apply is the caller's:
    it needs the field manager); 415 for any other type."""
    apply_patch = PATCHES.get(content_type)
    if apply_patch is None:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format: {content_type}",
        )
    return apply_patch(doc, patch)


def merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise invalid(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        try:
            doc = doc[int(part)] if isinstance(doc, list) else doc[part]
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise invalid(f"json patch: path not found at {part!r}") from e
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902."""
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        if kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            value = copy.deepcopy(_walk(doc, src))
            if kind == "move":
                doc = _remove(doc, src)
            doc = _add(doc, parts, value)
        elif kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, parts)
        elif kind == "replace":
            doc = _add(_remove(doc, parts), parts, copy.deepcopy(op.get("value")))
        elif kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise invalid(f"json patch test failed at {op.get('path')}")
        else:
            raise invalid(f"json patch: unknown op {kind!r}")
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent, last = _walk(doc, parts[:-1]), parts[-1]
    if isinstance(parent, list):
        idx = len(parent) if last == "-" else int(last)
        if idx > len(parent):
            raise invalid("json patch: index out of range")
        parent.insert(idx, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise invalid("json patch: parent is not a container")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent, last = _walk(doc, parts[:-1]), parts[-1]
    _walk(parent, [last])  # raises when missing
    if isinstance(parent, list):
        parent.pop(int(last))
    else:
        del parent[last]
    return doc


def strategic_merge(doc: Any, patch: Any) -> Any:
    """Strategic merge patch incl. $patch, $retainKeys, $setElementOrder, $deleteFromPrimitiveList."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"})
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            out[field] = [x for x in out.get(field) or [] if x not in value]
        elif value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = strategic_merge(out.get(key), value)
        elif isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, key)
        else:
            out[key] = value
    for key, order in patch.items():
        if key.startswith("$setElementOrder/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = _reorder(out[field], order, field)
    if isinstance(patch.get("$retainKeys"), list):
        out = {k: v for k, v in out.items() if k in patch["$retainKeys"]}
    return out


def _strip(value: Any) -> Any:
    """Drop directives from values that are inserted as a whole."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _merge_list(orig: Any, patch: list[Any], field: str) -> list[Any]:
    orig = orig if isinstance(orig, list) else []
    if field in PRIMITIVE_MERGE:
        return copy.deepcopy(orig) + [x for x in patch if x not in orig]
    key = merge_key(field, orig + patch)
    replace = any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch)
    if key is None or replace or not all(isinstance(p, dict) for p in patch):
        return [_strip(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    out = copy.deepcopy(orig)
    for item in patch:
        idx = next(
            (i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item.get(key)),
            None,
        )
        if item.get("$patch") == "delete":
            out = [o for o in out if not (isinstance(o, dict) and o.get(key) == item.get(key))]
        elif idx is None:
            out.append(_strip(item))
        else:
            out[idx] = strategic_merge(out[idx], item)
    return out


def _reorder(items: list[Any], order: list[Any], field: str) -> list[Any]:
    key = merge_key(field, items + order)

    def ident(x: Any) -> Any:
        return x.get(key) if key and isinstance(x, dict) else x

    wanted = [ident(o) for o in order]
    ranked = [x for w in wanted for x in items if ident(x) == w]
    return ranked + [x for x in items if ident(x) not in wanted]


def apply(
    live: dict[str, Any] | None, config: dict[str, Any], last: dict[str, Any] | None
) -> dict[str, Any]:
    """Server-side apply for one field manager: merge the config, then drop what that manager
    applied last time and no longer applies. No ownership conflicts between managers."""
    if live is None:
        return _strip(config)
    merged = strategic_merge(live, _strip(config))
    if last is not None:
        _drop_stale(merged, last, config, None)
    return merged


def _drop_stale(obj: Any, last: Any, new: Any, field: str | None) -> None:
    if isinstance(obj, dict) and isinstance(last, dict) and isinstance(new, dict):
        for k, v in last.items():
            if k not in new:
                obj.pop(k, None)
            elif k in obj:
                _drop_stale(obj[k], v, new[k], k)
    elif isinstance(obj, list) and isinstance(last, list) and isinstance(new, list):
        key = merge_key(field, last + new)
        if key is None or not all(isinstance(x, dict) for x in obj + last + new):
            return
        keep = {x.get(key) for x in new}
        gone = {x.get(key) for x in last} - keep
        obj[:] = [x for x in obj if x.get(key) not in gone]
        for x in obj:
            prev = next((y for y in last if y.get(key) == x.get(key)), None)
            cur = next((y for y in new if y.get(key) == x.get(key)), None)
            if prev is not None and cur is not None:
                _drop_stale(x, prev, cur, None)
