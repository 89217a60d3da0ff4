"""What the API server fills in or rewrites on every write, as a real cluster does.

A drift check that compares a chart's manifest with live objects must tell these apart from
hand edits, so the stand-in does them the way kube-apiserver's defaulting and decoding do
(the `SetDefaults_*` functions of k8s.io/kubernetes/pkg/apis/{core,apps,batch}/v1 and
`resource.Quantity`'s canonical form), for the kinds a chart renders:

- Deployments, StatefulSets, ReplicaSets, DaemonSets, Jobs and Pods: the pod template's
  `restartPolicy`, `dnsPolicy`, `schedulerName`, `terminationGracePeriodSeconds`,
  `securityContext: {}`; per container `terminationMessagePath`,
  `terminationMessagePolicy`, `imagePullPolicy` (`Always` for an image without a tag or
  tagged `latest`, else `IfNotPresent`), a port's `protocol: TCP`, a probe's
  `timeoutSeconds`, `periodSeconds`, `successThreshold`, `failureThreshold`; a ConfigMap or
  Secret volume's `defaultMode: 420`;
- resource quantities (`resources.limits` / `requests` of every container) are stored in
  canonical form: `1000m` reads back as `1`, `0.5` as `500m`, `1024Mi` as `1Gi`, `1536Mi`
  stays `1536Mi`, below 1024 bytes or not a whole number of bytes a binary quantity is
  written in decimal (`0.5Ki` -> `512`), anything finer than a milli-unit is rounded up;
- Services: `sessionAffinity: None`, `ipFamilies: [IPv4]`, `ipFamilyPolicy: SingleStack`,
  `internalTrafficPolicy: Cluster` (type and cluster IP are allocated in store.py);
- NetworkPolicies: `policyTypes` (Ingress, plus Egress when there are egress rules) and a
  port's `protocol: TCP` (k8s.io/kubernetes pkg/apis/networking/v1/defaults.go).

Simplification: fields of other kinds and rarer defaults (ephemeral containers, CSI volumes,
HPA behaviour, ...) are not defaulted.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

Obj = dict[str, Any]

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job"}

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"m": -1, "": 0, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([eE][+-]?[0-9]+|[a-zA-Z]*)$")


def canonical_quantity(text: Any) -> Any:
    """`resource.Quantity`'s canonical string of `text`; anything unparsable is returned as
    it is (the real server would refuse it with a 422; the stand-in has no validation)."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        return text
    match = _QUANTITY.match(str(text).strip())
    if not match:
        return text
    number, suffix = match.groups()
    try:
        amount = Decimal(number)
    except InvalidOperation:
        return text
    if suffix in _BINARY:
        value, form = amount * 1024 ** _BINARY[suffix], "binary"
    elif suffix in _DECIMAL:
        value, form = amount * Decimal(1000) ** _DECIMAL[suffix], "decimal"
    elif suffix[:1] in ("e", "E"):
        value, form = amount * Decimal(10) ** int(suffix[1:]), "exponent"
    else:
        return text
    # Nothing finer than a milli-unit survives: rounded up, as the API server does.
    value = (value * 1000).to_integral_value(rounding=ROUND_CEILING) / 1000
    if form == "binary" and (abs(value) < 1024 or value != value.to_integral_value()):
        form = "decimal"  # CanonicalizeBytes: never lose precision, never show `0Ki`
    if value == 0:
        return "0"
    if form == "binary":
        power = max(p for p in range(7) if value % (1024**p) == 0)
        suffix = next((s for s, p in _BINARY.items() if p == power), "")
        return f"{int(value / 1024**power)}{suffix}"
    exponent = max(e for e in range(-1, 7) if (value / Decimal(1000) ** e) % 1 == 0)
    mantissa = int(value / Decimal(1000) ** exponent)
    if form == "exponent":
        return f"{mantissa}e{3 * exponent}" if exponent else str(mantissa)
    return f"{mantissa}{next(s for s, e in _DECIMAL.items() if e == exponent)}"


def _probe(probe: Any) -> None:
    if isinstance(probe, dict):
        probe.setdefault("timeoutSeconds", 1)
        probe.setdefault("periodSeconds", 10)
        probe.setdefault("successThreshold", 1)
        probe.setdefault("failureThreshold", 3)


def _container(container: Any) -> None:
    if not isinstance(container, dict):
        return
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = str(container.get("image") or "")
    tag = image.rpartition("/")[2].partition("@")[0]
    latest = ":" not in tag or tag.endswith(":latest")
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(container.get(name))
    resources = container.get("resources")
    if isinstance(resources, dict):
        for part in ("limits", "requests"):
            amounts = resources.get(part)
            if isinstance(amounts, dict):
                resources[part] = {k: canonical_quantity(v) for k, v in amounts.items()}


def pod_spec(spec: Any) -> None:
    """Defaults of a PodSpec (a pod's, or a workload's pod template's)."""
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            _container(container)
    for volume in spec.get("volumes") or []:
        for source in ("configMap", "secret"):
            if isinstance(volume, dict) and isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)


def workload(kind: str, obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if kind == "Pod":
        pod_spec(spec)
        return
    template = spec.get("template")
    if kind in POD_TEMPLATE_KINDS and isinstance(template, dict):
        pod_spec(template.get("spec"))


def service(spec: Obj) -> None:
    spec.setdefault("sessionAffinity", "None")
    if spec.get("type") != "ExternalName":
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")


def network_policy(spec: Obj) -> None:
    """SetDefaults_NetworkPolicy and SetDefaults_NetworkPolicyPort (pkg/apis/networking/v1):
    no `policyTypes` means Ingress, and Egress too when there are egress rules; a port
    without a protocol is TCP. Stored and served only: the stand-in has no network, so a
    NetworkPolicy allows or denies nothing."""
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", *(["Egress"] if spec.get("egress") else [])]
    for direction in ("ingress", "egress"):
        rules = [r for r in spec.get(direction) or [] if isinstance(r, dict)]
        for port in (p for r in rules for p in r.get("ports") or []):
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
