"""The hand edits of issue #13 (and #23.3's NetworkPolicy), as an operator makes them with
kubectl against a release of chart 0.52.0 installed from environments/local.yaml, each with what the live check must report:
(kubectl arguments, (kind, name, JSON pointer), (live, declared) as the drift record shows
them; `...` where the value is too long to spell out here)."""

from __future__ import annotations

import json
from typing import Any

HISTORY_ENV = "/spec/template/spec/containers/0/env/4"

HandEdit = tuple[tuple[str, ...], tuple[str, str, str], tuple[Any, Any]]

HAND_EDITS: list[HandEdit] = [
    (
        ("scale", "deployment/temporal-frontend", "--replicas=7"),
        ("Deployment", "temporal-frontend", "/spec/replicas"),
        ("7", "1"),
    ),
    (
        ("set", "resources", "deployment/temporal-history", "--limits=memory=512Mi"),
        (
            "Deployment",
            "temporal-history",
            "/spec/template/spec/containers/0/resources/limits/memory",
        ),
        ('"512Mi"', '"256Mi"'),
    ),
    (
        ("set", "env", "deployment/temporal-history", "HAND_ADDED=yes"),
        ("Deployment", "temporal-history", HISTORY_ENV),
        ('{"name":"HAND_ADDED","value":"yes"}', None),
    ),
    (
        (
            "patch",
            "configmap",
            "temporal-config",
            "--type=merge",
            "-p",
            json.dumps({"data": {"config_template.yaml": "garbage"}}),
        ),
        ("ConfigMap", "temporal-config", "/data/config_template.yaml"),
        ('"garbage"', ...),
    ),
    (
        (
            "patch",
            "service",
            "temporal-web",
            "--type=json",
            "-p",
            json.dumps([{"op": "replace", "path": "/spec/ports/0/targetPort", "value": 9999}]),
        ),
        ("Service", "temporal-web", "/spec/ports/0/targetPort"),
        ("9999", '"http"'),
    ),
    (
        ("delete", "service", "temporal-admintools"),
        ("Service", "temporal-admintools", ""),
        (None, "exists"),
    ),
    (
        # #23.3: the bootstrap's own NetworkPolicy opened to the world; unlike a list element
        # added to a chart object, install_chart removes it (it replaces its policies whole).
        (
            "patch",
            "networkpolicy",
            "temporal-frontend",
            "--type=json",
            "-p",
            json.dumps(
                [
                    {
                        "op": "add",
                        "path": "/spec/ingress/0/from/-",
                        "value": {"ipBlock": {"cidr": "0.0.0.0/0"}},
                    }
                ]
            ),
        ),
        ("NetworkPolicy", "temporal-frontend", "/spec/ingress/0/from/1"),
        ('{"ipBlock":{"cidr":"0.0.0.0/0"}}', None),
    ),
    (
        ("label", "deployment", "temporal-web", "app.kubernetes.io/part-of-"),
        ("Deployment", "temporal-web", "/metadata/labels/app.kubernetes.io~1part-of"),
        (None, '"temporal"'),
    ),
]
REMOVE_ADDED_ENV = ("set", "env", "deployment/temporal-history", "HAND_ADDED-")
