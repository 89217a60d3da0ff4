"""Pod Security admission, as kube-apiserver's built-in PodSecurity plugin applies it.

A namespace labelled `pod-security.kubernetes.io/enforce: baseline|restricted` refuses a pod
that violates that level with 403 Forbidden and the plugin's message:

    pods "web-7d9f-abcde" is forbidden: violates PodSecurity "restricted:latest":
    allowPrivilegeEscalation != false (container "web" must set
    securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (...)

The rules and the wording of each reason and detail follow the checks of
k8s.io/pod-security-admission (staging/src/k8s.io/pod-security-admission/policy/check_*.go in
kubernetes/kubernetes, read for this module; the code here is written from their rules, not
copied). The "restricted" level runs the baseline checks too, except where a restricted
check replaces one (capabilities, seccomp). Reasons are listed baseline checks first, then
restricted ones, each in check-id order, as the plugin's registry orders them.

Where it applies: the ReplicaSet controller's pod creations (pods.py). A refused pod is not
created; the ReplicaSet gets a `FailedCreate` Warning Event (`Error creating: <message>`) and
a `ReplicaFailure` condition, and its Deployment the same condition, as
kube-controller-manager writes them.

Simplifications (none that the product's tests rely on to pass):
- Pods created directly through the API (`POST .../pods`) and the Job controller's pods are
  not checked; the chart's workloads are Deployments, whose pods are.
- Only the `enforce` label is acted on; `audit` and `warn` are accepted and ignored (a real
  API server adds a `Warning:` header and an audit annotation).
- The `-version` labels are read as `latest`: the rules here are those of the current
  release (1.34); older policy versions (e.g. runAsNonRoot before 1.34 ignoring user
  namespaces) are not modelled.
- Left out, because nothing this project renders can hit them: AppArmor, SELinux options,
  /proc mount type, sysctls, Windows hostProcess, host probes/lifecycle hooks, the user
  namespace (`hostUsers: false`) relaxation of the runAs* checks, and exemptions (users,
  runtime classes, namespaces) of the admission configuration.
- Pod updates are not re-checked (the plugin checks updates only for mutable fields).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Obj = dict[str, Any]

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")

# Capabilities the baseline level lets a container add (the container runtimes' defaults).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
# Volume types the restricted level allows.
RESTRICTED_VOLUME_TYPES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
# Every volume source field of the core API, to name the type of a volume that is none of
# the allowed ones.
VOLUME_TYPES = (
    *RESTRICTED_VOLUME_TYPES,
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
)

Result = tuple[str, str] | None  # (forbidden reason, forbidden detail), None when allowed


def _quote(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _plural(one: str, many: str, count: int) -> str:
    return one if count == 1 else many


def _containers(spec: Obj) -> Iterator[Obj]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field) or []


def _sc(container: Obj) -> Obj:
    return container.get("securityContext") or {}


def _who(kind: str, names: list[str]) -> str:
    return f"{_plural(kind, kind + 's', len(names))} {_quote(names)}"


# -- baseline ---------------------------------------------------------------------------
def _host_namespaces(spec: Obj) -> Result:
    set_ = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
    return ("host namespaces", ", ".join(set_)) if set_ else None


def _privileged(spec: Obj) -> Result:
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("privileged") is True]
    if not bad:
        return None
    return "privileged", f"{_who('container', bad)} must not set securityContext.privileged=true"


def _capabilities_baseline(spec: Obj) -> Result:
    bad, caps = [], set()
    for c in _containers(spec):
        added = [a for a in (_sc(c).get("capabilities") or {}).get("add") or []]
        forbidden = [a for a in added if a not in BASELINE_CAPABILITIES]
        if forbidden:
            bad.append(c["name"])
            caps.update(forbidden)
    if not bad:
        return None
    return (
        "non-default capabilities",
        f"{_who('container', bad)} must not include {_quote(sorted(caps))} in "
        "securityContext.capabilities.add",
    )


def _host_path_volumes(spec: Obj) -> Result:
    bad = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    return ("hostPath volumes", _who("volume", bad)) if bad else None


def _host_ports(spec: Obj) -> Result:
    bad, ports = [], []
    for c in _containers(spec):
        used = [str(p["hostPort"]) for p in c.get("ports") or [] if p.get("hostPort")]
        if used:
            bad.append(c["name"])
            ports.extend(used)
    if not bad:
        return None
    return "hostPort", f"{_who('container', bad)} {_plural('uses', 'use', len(bad))} " + (
        f"{_plural('hostPort', 'hostPorts', len(ports))} {', '.join(ports)}"
    )


def _seccomp_baseline(spec: Obj) -> Result:
    setters, values = [], set()
    pod_type = ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    if pod_type == "Unconfined":
        setters.append("pod")
        values.add(pod_type)
    bad = []
    for c in _containers(spec):
        kind = (_sc(c).get("seccompProfile") or {}).get("type")
        if kind == "Unconfined":
            bad.append(c["name"])
            values.add(kind)
    if bad:
        setters.append(_who("container", bad))
    if not setters:
        return None
    return (
        "seccompProfile",
        f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
        f"{_quote(sorted(values))}",
    )


# -- restricted -------------------------------------------------------------------------
def _allow_privilege_escalation(spec: Obj) -> Result:
    bad = [
        c["name"] for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False
    ]
    if not bad:
        return None
    return (
        "allowPrivilegeEscalation != false",
        f"{_who('container', bad)} must set securityContext.allowPrivilegeEscalation=false",
    )


def _capabilities_restricted(spec: Obj) -> Result:
    missing_drop, adding, caps = [], [], set()
    for c in _containers(spec):
        capabilities = _sc(c).get("capabilities")
        if capabilities is None:
            missing_drop.append(c["name"])
            continue
        if "ALL" not in (capabilities.get("drop") or []):
            missing_drop.append(c["name"])
        forbidden = [a for a in capabilities.get("add") or [] if a != "NET_BIND_SERVICE"]
        if forbidden:
            adding.append(c["name"])
            caps.update(forbidden)
    details = []
    if missing_drop:
        details.append(
            f'{_who("container", missing_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_who('container', adding)} must not include {_quote(sorted(caps))} in "
            "securityContext.capabilities.add"
        )
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def _run_as_non_root(spec: Obj) -> Result:
    setters: list[str] = []
    pod_value = (spec.get("securityContext") or {}).get("runAsNonRoot")
    if pod_value is False:
        setters.append("pod")
    explicit, implicit = [], []
    for c in _containers(spec):
        value = _sc(c).get("runAsNonRoot")
        if value is False:
            explicit.append(c["name"])
        elif value is None and pod_value is not True:
            implicit.append(c["name"])
    if explicit:
        setters.append(_who("container", explicit))
    if setters:
        return (
            "runAsNonRoot != true",
            f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false",
        )
    if implicit:
        return (
            "runAsNonRoot != true",
            f"pod or {_who('container', implicit)} must set securityContext.runAsNonRoot=true",
        )
    return None


def _run_as_user(spec: Obj) -> Result:
    setters = []
    if (spec.get("securityContext") or {}).get("runAsUser") == 0:
        setters.append("pod")
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    if bad:
        setters.append(_who("container", bad))
    if not setters:
        return None
    return "runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0"


def _seccomp_restricted(spec: Obj) -> Result:
    setters, values = [], set()
    allowed = ("RuntimeDefault", "Localhost")
    pod_profile = (spec.get("securityContext") or {}).get("seccompProfile")
    pod_set = False
    if pod_profile is not None:
        if pod_profile.get("type") in allowed:
            pod_set = True
        else:
            setters.append("pod")
            values.add(str(pod_profile.get("type")))
    explicit, implicit = [], []
    for c in _containers(spec):
        profile = _sc(c).get("seccompProfile")
        if profile is not None:
            if profile.get("type") not in allowed:
                explicit.append(c["name"])
                values.add(str(profile.get("type")))
        elif not pod_set:
            implicit.append(c["name"])
    if explicit:
        setters.append(_who("container", explicit))
    if setters:
        return (
            "seccompProfile",
            f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
            f"{_quote(sorted(values))}",
        )
    if implicit:
        return (
            "seccompProfile",
            f"pod or {_who('container', implicit)} must set securityContext.seccompProfile.type "
            'to "RuntimeDefault" or "Localhost"',
        )
    return None


def _restricted_volumes(spec: Obj) -> Result:
    bad, types = [], set()
    for v in spec.get("volumes") or []:
        if any(t in v for t in RESTRICTED_VOLUME_TYPES):
            continue
        bad.append(v["name"])
        types.add(next((t for t in VOLUME_TYPES if t in v), "unknown"))
    if not bad:
        return None
    return (
        "restricted volume types",
        f"{_who('volume', bad)} {_plural('uses', 'use', len(bad))} restricted volume "
        f"{_plural('type', 'types', len(types))} {_quote(sorted(types))}",
    )


Check = Callable[[Obj], Result]
# (check id, level, check, the baseline check it replaces at restricted)
CHECKS: tuple[tuple[str, str, Check, str | None], ...] = (
    ("capabilities_baseline", "baseline", _capabilities_baseline, None),
    ("hostNamespaces", "baseline", _host_namespaces, None),
    ("hostPathVolumes", "baseline", _host_path_volumes, None),
    ("hostPorts", "baseline", _host_ports, None),
    ("privileged", "baseline", _privileged, None),
    ("seccompProfile_baseline", "baseline", _seccomp_baseline, None),
    ("allowPrivilegeEscalation", "restricted", _allow_privilege_escalation, None),
    ("capabilities_restricted", "restricted", _capabilities_restricted, "capabilities_baseline"),
    ("restrictedVolumes", "restricted", _restricted_volumes, None),
    ("runAsNonRoot", "restricted", _run_as_non_root, None),
    ("runAsUser", "restricted", _run_as_user, None),
    ("seccompProfile_restricted", "restricted", _seccomp_restricted, "seccompProfile_baseline"),
)


def violations(level: str, spec: Obj) -> list[tuple[str, str]]:
    """The (reason, detail) pairs of every check of `level` that `spec` (a PodSpec) fails."""
    if level not in ("baseline", "restricted"):
        return []
    active = [c for c in CHECKS if c[1] == "baseline" or level == "restricted"]
    replaced = {c[3] for c in active if c[3]}
    found = []
    for check_id, _, check, _ in active:
        if check_id in replaced:
            continue
        result = check(spec)
        if result is not None:
            found.append(result)
    return found


def enforced_level(namespace: Obj | None) -> str:
    """The namespace's enforce level; `privileged` (no checks) when unlabelled or invalid
    (the plugin falls back to its configured default, `privileged` unless set)."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE_LABEL, "privileged")
    return level if level in LEVELS else "privileged"


def refusal(namespace: Obj | None, pod_name: str, spec: Obj) -> str | None:
    """The plugin's message for a pod `namespace` refuses, or None when it is admitted."""
    level = enforced_level(namespace)
    found = violations(level, spec)
    if not found:
        return None
    reasons = ", ".join(f"{reason} ({detail})" for reason, detail in found)
    return f'pods "{pod_name}" is forbidden: violates PodSecurity "{level}:latest": {reasons}'
