"""The few API validations the stand-in makes, where a client's behaviour depends on them.

- A Service's ports: every port needs a name once there are two or more, names are unique,
  and so are (port, protocol) pairs, as kube-apiserver's ValidateService says
  (`Service "web" is invalid: spec.ports[1].name: Duplicate value: "http"`). A hand-edited
  port number makes helm's merge (v3) or apply (v4) produce exactly such a list, and the
  upgrade fails with this 422 on a real cluster.

Simplification: nothing else is validated (no schemas, no immutable fields).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import invalid


def service(name: str, spec: Any) -> None:
    ports = spec.get("ports") if isinstance(spec, dict) else None
    if not isinstance(ports, list):
        return
    problems = []
    names: set[str] = set()
    pairs: set[tuple[Any, str]] = set()
    for i, port in enumerate(p for p in ports if isinstance(p, dict)):
        port_name = port.get("name") or ""
        if len(ports) > 1 and not port_name:
            problems.append(f"spec.ports[{i}].name: Required value")
        elif port_name in names:
            problems.append(f"spec.ports[{i}].name: Duplicate value: {json.dumps(port_name)}")
        names.add(port_name)
        pair = (port.get("port"), str(port.get("protocol") or "TCP"))
        if pair in pairs:
            value = json.dumps({"port": pair[0], "protocol": pair[1]})
            problems.append(f"spec.ports[{i}]: Duplicate value: {value}")
        pairs.add(pair)
    if problems:
        raise invalid(f'Service "{name}" is invalid: {", ".join(problems)}')
