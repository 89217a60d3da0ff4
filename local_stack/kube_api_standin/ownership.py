"""Field ownership, as server-side apply keeps it in `managedFields`, and apply conflicts.

Every write names a field manager: the request's `fieldManager`, else the first part of its
User-Agent (`kubectl/v1.33 ...` -> `kubectl`), as the API server derives it. The stand-in
remembers, per object, which managers own which fields:

- create, update and patch (any patch type but apply) give the writer every field whose
  value it set or changed, and take those fields from every other manager;
- apply gives the applier the fields of its configuration, shared with managers that hold
  the same value; a field the configuration sets to a value other than the live one while
  another manager owns it is a conflict: 409 `Conflict` with one
  `FieldManagerConflict` cause per field (`conflict with "kubectl" using apps/v1`,
  field `.spec.replicas`), as the real server answers, unless the request says
  `force=true`, which takes the fields over.

So `kubectl scale` followed by a `helm` v4 upgrade (server-side apply, `force=false`)
conflicts on `.spec.replicas` exactly as on a cluster, and `helm upgrade --force-conflicts`
wins.

Fields are the leaves of the object outside `status` and outside `metadata` (except its
`labels` and `annotations`); list items with a merge key (containers by name, ports by
port, ...: patches.MERGE_KEYS) are fields of their own, other lists are one field.
Simplifications: ownership is kept in the stand-in, not served as `metadata.managedFields`;
it is not versioned per API version; a manager's Update and Apply ownership are one set.
"""

from __future__ import annotations

import json
from typing import Any

from .defaulting import canonical_quantity
from .errors import ApiError
from .patches import merge_key

Field = tuple[str, ...]
Obj = dict[str, Any]


def manager_of(field_manager: str | None, user_agent: str | None) -> str:
    if field_manager:
        return field_manager
    agent = (user_agent or "").split("/", 1)[0].strip()
    return agent or "unknown"


def _scope(obj: Any) -> Obj:
    """The parts of an object fields are counted in."""
    if not isinstance(obj, dict):
        return {}
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("labels", "annotations") if meta.get(k)}
    if kept:
        out["metadata"] = kept
    return out


def leaves(obj: Any) -> dict[Field, Any]:
    """Field -> value for every owned field of `obj`."""
    found: dict[Field, Any] = {}
    _walk(_scope(obj), None, (), found)
    return found


def _walk(value: Any, name: str | None, at: Field, found: dict[Field, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _walk(inner, key, (*at, key), found)
        return
    if isinstance(value, list) and value:
        key = merge_key(name, value)
        if key and all(isinstance(item, dict) and key in item for item in value):
            for item in value:
                _walk(item, None, (*at, f"[{key}={json.dumps(item[key])}]"), found)
            return
    if at:
        # Compared as the server stores it: `1000m` and `1` are one value.
        quantity = len(at) > 1 and at[-2] in ("limits", "requests")
        found[at] = canonical_quantity(value) if quantity else value


def display(field: Field) -> str:
    """`.spec.template.spec.containers[name="web"].image`, as the API server names fields."""
    return "".join(part if part.startswith("[") else f".{part}" for part in field)


class Ownership:
    """Who owns which field of each object (by uid)."""

    def __init__(self) -> None:
        self.owners: dict[str, dict[Field, set[str]]] = {}

    def forget(self, uid: str) -> None:
        self.owners.pop(uid, None)

    def written(self, uid: str, manager: str, old: Obj | None, new: Obj) -> None:
        """A create, update or non-apply patch by `manager` turned `old` into `new`."""
        table = self.owners.setdefault(uid, {})
        before, after = leaves(old) if old is not None else {}, leaves(new)
        for field in set(table) - set(after):
            del table[field]
        for field, value in after.items():
            if field not in before or before[field] != value:
                table[field] = {manager}

    def check_apply(
        self, uid: str, manager: str, live: Obj, config: Obj, api_version: str, force: bool
    ) -> None:
        """Raise the API server's 409 when `config` would change a field another manager
        owns (unless `force`)."""
        if force:
            return
        table = self.owners.get(uid, {})
        current = leaves(live)
        causes = []
        for field, value in sorted(leaves(config).items()):
            others = table.get(field, set()) - {manager}
            if others and field in current and current[field] != value:
                for other in sorted(others):
                    causes.append(
                        {
                            "reason": "FieldManagerConflict",
                            "message": f'conflict with "{other}" using {api_version}',
                            "field": display(field),
                        }
                    )
        if causes:
            lines = [f"{c['message']}: {c['field']}" for c in causes]
            many = "conflict" if len(causes) == 1 else "conflicts"
            raise ApiError(
                409,
                "Conflict",
                f"Apply failed with {len(causes)} {many}: " + "\n".join(lines),
                {"causes": causes},
            )

    def applied(self, uid: str, manager: str, live: Obj | None, config: Obj, new: Obj) -> None:
        """`manager` applied `config` to `live` (None: created it), giving `new`."""
        table = self.owners.setdefault(uid, {})
        before, mine, after = leaves(live) if live else {}, leaves(config), leaves(new)
        for field in set(table) - set(after):
            del table[field]
        for field, owners in table.items():
            if field not in mine:
                owners.discard(manager)
        for field, value in mine.items():
            if field not in after:
                continue
            if before.get(field, value) != value or field not in before:
                table[field] = {manager}  # changed (or forced) to this value: this manager's
            else:
                table.setdefault(field, set()).add(manager)  # same value: shared
        for field in [f for f, owners in table.items() if not owners]:
            del table[field]
