"""Field-by-field differences between two renderings of a chart (multi-document YAML).

Each object is known by `Kind name`; each field by its path (`spec.replicas`,
`spec.template.spec.containers[0].resources.limits.memory`). A ConfigMap value that is YAML
(the server's config template) is compared field by field too, its `{{ ... }}` expressions
read as text, so a changed store setting shows as
`data.config_template.yaml > persistence.datastores.default.sql.tls.caFile`. Empty maps and
lists, and nulls, count as absent (the chart renders `resources: {}` and no resources
alike).

Values under a Secret's `data` / `stringData`, and values of keys that look like secrets, are
never shown: only that they differ.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from declared_state.extra_values import looks_secret

HIDDEN = "(secret value hidden)"
MAX_SHOWN = 80
"""Longer values (checksums, config blobs) are cut; the field names the place."""
ABSENT = "(absent)"
_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.DOTALL)


@dataclass(frozen=True)
class Difference:
    object: str
    field: str
    original: str
    imported: str

    @property
    def key(self) -> tuple[str, str]:
        return self.object, self.field


def _flatten(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _flatten(item, f"{prefix}[{index}]")
    elif node is not None:  # null and absent mean the same to Kubernetes
        yield prefix, node


def _embedded(text: str) -> Any:
    """A ConfigMap value parsed as YAML (template expressions kept as text), or None."""
    quoted = _TEMPLATE.sub(lambda m: "'" + m.group(0).replace("'", "''") + "'", text)
    try:
        parsed = yaml.safe_load(quoted)
    except yaml.YAMLError:
        return None
    return parsed if isinstance(parsed, dict) else None


def fields(manifests: str) -> dict[tuple[str, str], Any]:
    """(object, field) -> value for every leaf of every rendered object."""
    found: dict[tuple[str, str], Any] = {}
    for doc in yaml.safe_load_all(manifests):
        if not isinstance(doc, dict) or "kind" not in doc:
            continue
        name = f"{doc['kind']} {(doc.get('metadata') or {}).get('name', '?')}"
        for path, value in _flatten(doc, ""):
            if doc["kind"] == "ConfigMap" and path.startswith("data.") and isinstance(value, str):
                parsed = _embedded(value)
                if parsed is not None:
                    for inner, inner_value in _flatten(parsed, ""):
                        found[(name, f"{path} > {inner}")] = inner_value
                    continue
            found[(name, path)] = value
    return found


def _secret(object_name: str, field: str) -> bool:
    if object_name.startswith("Secret ") and field.startswith(("data.", "stringData.")):
        return True
    last = re.split(r"[.>\[\] ]+", field.strip())[-1] if field else ""
    return looks_secret(last)


def _shown(value: Any, present: bool, secret: bool) -> str:
    if not present:
        return ABSENT
    if secret:
        return HIDDEN
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= MAX_SHOWN else f"{text[: MAX_SHOWN - 3]}..."


def differences(original: str, imported: str) -> tuple[int, list[Difference]]:
    """(fields compared, differences) between two renderings; an object only one of them
    renders is one difference (field `""`), not one per field."""
    left, right = fields(original), fields(imported)
    keys = sorted(set(left) | set(right))
    objects_left = {obj for obj, _ in left}
    objects_right = {obj for obj, _ in right}
    found = [
        Difference(
            obj,
            "",
            "rendered" if obj in objects_left else ABSENT,
            "rendered" if obj in objects_right else ABSENT,
        )
        for obj in sorted(objects_left ^ objects_right)
    ]
    for key in keys:
        if key[0] not in objects_left or key[0] not in objects_right:
            continue
        if key in left and key in right and left[key] == right[key]:
            continue
        secret = _secret(*key)
        found.append(
            Difference(
                key[0],
                key[1],
                _shown(left.get(key), key in left, secret),
                _shown(right.get(key), key in right, secret),
            )
        )
    return len(keys), found
