"""Create or update one namespaced object the bootstrap owns (a ConfigMap or a Secret).

Shared by ensure_ca_bundle and ensure_db_secret: read the object, create it when missing (and
its namespace when that is missing too: these steps run before helm creates it), replace it
only when the keys the bootstrap manages differ, and report created / updated / unchanged.
A 409 on create (another writer won the race) or on replace (stale resourceVersion) means
"read and compare again". Keys other writers added to the object are kept.

Every run also says how the live object differed from the declared one (`drift`); in dry-run
mode that is all it does: the action is the one it would take, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters import object_diff
from adapters.clients import KubeClients
from adapters.errors import ErrorType, activity_error
from adapters.errors.kubernetes import KUBERNETES_ERRORS, kubernetes_error
from contracts.base import DriftItem
from contracts.ensure_ca_bundle import WriteAction

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "temporal-bootstrap"
MANAGED_LABELS: dict[str, str] = {MANAGED_BY_LABEL: MANAGED_BY}

ObjectKind = Literal["ConfigMap", "Secret"]


class Ensured(NamedTuple):
    """What `ensure_namespaced_object` did (or, in dry-run, would do) and why."""

    action: WriteAction
    drift: tuple[DriftItem, ...]
    """How the live object differed from the declared one before any write; () in sync."""


def describe_write(what: str, action: WriteAction, dry_run: bool) -> str:
    """`ConfigMap ns/name created`, or in a dry run `... would be created`."""
    if action == "unchanged":
        return f"{what} unchanged"
    return f"{what} {'would be ' if dry_run else ''}{action}"


# Each conflict means another writer changed the object between our read and our write;
# a few immediate re-reads settle an ordinary race, anything beyond is for the retry policy.
_MAX_ATTEMPTS = 3

_METHODS: dict[ObjectKind, tuple[str, str, str]] = {
    "ConfigMap": (
        "read_namespaced_config_map",
        "create_namespaced_config_map",
        "replace_namespaced_config_map",
    ),
    "Secret": ("read_namespaced_secret", "create_namespaced_secret", "replace_namespaced_secret"),
}


def core_api(kube: KubeClients, context: str | None) -> k8s.CoreV1Api:
    """The CoreV1Api of `context`; building it reads the kubeconfig, which may not load."""
    try:
        return kube.core_v1(context)
    except KUBERNETES_ERRORS as exc:
        raise kubernetes_error(f"kube context {context or '(current)'}", exc) from None


def ensure_namespaced_object(
    core: k8s.CoreV1Api,
    kind: ObjectKind,
    namespace: str,
    name: str,
    *,
    build: Callable[[Any | None, k8s.V1ObjectMeta], Any],
    differences: Callable[[Any], list[str]],
    dry_run: bool = False,
) -> Ensured:
    """Make `kind` `namespace`/`name` hold what `build` describes; write only when it differs.

    `build(current, metadata)` returns the full object to send (`current` is the live object
    or None on create; `metadata` already carries the managed-by label and, on update, the
    live resourceVersion). `differences(live)` lists how the live object's managed content
    differs from the desired one ([] when current), without ever quoting a value. With
    `dry_run`, the object is still built (so a refusal surfaces as it would) but not sent.
    Secret contents never appear in messages or logs.
    """
    where = f"{kind} {namespace}/{name}"
    verb = "would be" if dry_run else "was"
    read_name, create_name, replace_name = _METHODS[kind]
    read, create, replace = (getattr(core, m) for m in (read_name, create_name, replace_name))

    def items(messages: Iterable[str]) -> tuple[DriftItem, ...]:
        return tuple(
            DriftItem(message=m, kind=kind, namespace=namespace, name=name) for m in messages
        )

    for _ in range(_MAX_ATTEMPTS):
        try:
            current = _call(where, "reading", kind, read, name, namespace)
        except _NotFound:
            current = None
        if current is None:
            drift = items([f"{where} missing"])
            meta = k8s.V1ObjectMeta(name=name, namespace=namespace, labels=dict(MANAGED_LABELS))
            body = build(None, meta)
            if dry_run or _create(core, create, where, kind, namespace, body):
                activity.logger.info("%s %s created", where, verb)
                return Ensured("created", drift)
            activity.logger.info("%s was created concurrently; comparing again", where)
            continue
        labels = current.metadata.labels or {}
        drift = items([*differences(current), *_label_drift(labels)])
        if not drift:
            activity.logger.info("%s unchanged", where)
            return Ensured("unchanged", drift)
        meta = current.metadata
        meta.labels = {**labels, **MANAGED_LABELS}
        meta.managed_fields = None
        body = build(current, meta)
        if dry_run:
            activity.logger.info("%s would be updated: %s", where, "; ".join(map(str, drift)))
            return Ensured("updated", drift)
        try:
            _call(where, "updating", kind, replace, name, namespace, body)
        except _Conflict:
            activity.logger.info("%s changed while being updated; comparing again", where)
            continue
        except _NotFound:
            activity.logger.info("%s was deleted while being updated; creating it", where)
            continue
        activity.logger.info("%s updated: %s", where, "; ".join(map(str, drift)))
        return Ensured("updated", drift)
    raise activity_error(
        f"{where} kept changing under concurrent writers ({_MAX_ATTEMPTS} attempts); "
        "find the other writer, the step will retry",
        ErrorType.KUBERNETES_UNAVAILABLE,
    )


def key_differences(live: dict[str, str], desired: dict[str, str], source: str) -> list[str]:
    """`key K missing` / `key K differs from <source>` for each desired key; never a value."""
    return [
        f"key {key} missing" if key not in live else f"key {key} differs from {source}"
        for key, value in desired.items()
        if live.get(key) != value
    ]


def _label_drift(labels: dict[str, str]) -> tuple[str, ...]:
    value = labels.get(MANAGED_BY_LABEL)
    if value == MANAGED_BY:
        return ()
    if value is None:
        return (f"label {MANAGED_BY_LABEL} missing",)
    return (f"label {MANAGED_BY_LABEL} is {value!r}, declared {MANAGED_BY!r}",)


def ensure_namespace(core: k8s.CoreV1Api, namespace: str) -> None:
    """Create `namespace` (labelled managed-by) unless it exists; 409 is success."""
    body = k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace, labels=dict(MANAGED_LABELS)))
    try:
        _call(f"Namespace {namespace}", "creating", "Namespace", core.create_namespace, body)
    except _Conflict:
        return
    activity.logger.info("Namespace %s created", namespace)


def _create(
    core: k8s.CoreV1Api,
    create: Callable[[str, Any], Any],
    where: str,
    kind: str,
    namespace: str,
    body: Any,
) -> bool:
    """True when created, False when it already exists (409). Creates a missing namespace."""
    try:
        _call(where, "creating", kind, create, namespace, body)
    except _Conflict:
        return False
    except _NotFound:
        # On create, 404 means the namespace is missing: create it, then the object.
        ensure_namespace(core, namespace)
        try:
            _call(where, "creating", kind, create, namespace, body)
        except _Conflict:
            return False
        except _NotFound:
            raise activity_error(
                f"creating {where}: namespace {namespace} disappeared right after being created",
                ErrorType.KUBERNETES_UNAVAILABLE,
            ) from None
    return True


class _NotFound(Exception):
    pass


class _Conflict(Exception):
    pass


# Ordinary answers the callers act on (create it / read again), not failures.
_OUTCOMES: dict[int, type[Exception]] = {404: _NotFound, 409: _Conflict}


def _call(where: str, doing: str, kind: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run one API call; 404/409 become _NotFound/_Conflict, the rest activity errors."""
    try:
        return fn(*args)
    except KUBERNETES_ERRORS as exc:
        if isinstance(exc, ApiException) and exc.status in _OUTCOMES:
            raise _OUTCOMES[exc.status]() from None
        # A Secret's refusal is never quoted: the API server may echo the data.
        raise kubernetes_error(f"{doing} {where}", exc, quote_server=kind != "Secret") from None


# Pod Security admission reads these labels on the namespace (#23.1).
POD_SECURITY_MODES = ("enforce", "audit", "warn")
POD_SECURITY_PREFIX = "pod-security.kubernetes.io/"


def pod_security_labels(level: str) -> dict[str, str]:
    """The namespace labels that make Pod Security admission apply `level` (latest rules)."""
    labels: dict[str, str] = {}
    for mode in POD_SECURITY_MODES:
        labels[f"{POD_SECURITY_PREFIX}{mode}"] = level
        labels[f"{POD_SECURITY_PREFIX}{mode}-version"] = "latest"
    return labels


def ensure_namespace_labels(
    core: k8s.CoreV1Api, namespace: str, labels: dict[str, str], *, dry_run: bool = False
) -> Ensured:
    """Make `namespace` exist and carry `labels` (other labels kept); write only on a change.

    A merge patch of just the differing labels: two runs racing write the same values, so no
    resourceVersion check is needed, and a label another writer added survives."""
    where = f"Namespace {namespace}"
    try:
        live = _call(where, "reading", "Namespace", core.read_namespace, namespace)
    except _NotFound:
        live = None
    except ApplicationError as exc:
        if exc.type != ErrorType.KUBERNETES_FORBIDDEN:
            raise
        # A worker whose Role is confined to the namespace (deploy/) cannot see it.
        raise activity_error(
            f"reading {where} to keep its Pod Security labels is forbidden ({exc.message}); "
            "grant get and patch on this namespace, or declare pod_security: none and label "
            "it yourself (deploy/target-namespace/namespace.yaml does)",
            ErrorType.KUBERNETES_FORBIDDEN,
        ) from None
    if live is None:
        drift: tuple[DriftItem, ...] = (
            DriftItem(message=f"{where} missing", kind="Namespace", name=namespace),
        )
        if not dry_run:
            body = k8s.V1Namespace(
                metadata=k8s.V1ObjectMeta(name=namespace, labels={**MANAGED_LABELS, **labels})
            )
            try:
                _call(where, "creating", "Namespace", core.create_namespace, body)
            except _Conflict:
                # Created concurrently: label what is there.
                return ensure_namespace_labels(core, namespace, labels)
            activity.logger.info("%s created with labels %s", where, labels)
        return Ensured("created", drift)
    current = live.metadata.labels or {}
    differing = {key: value for key, value in labels.items() if current.get(key) != value}
    drift = tuple(
        DriftItem(
            message=f"label {key} is {current[key]!r}, declared {value!r}"
            if key in current
            else f"label {key} missing",
            kind="Namespace",
            name=namespace,
            path="/metadata/labels/" + key.replace("~", "~0").replace("/", "~1"),
            live=current.get(key),
            declared=value,
        )
        for key, value in differing.items()
    )
    if not differing:
        return Ensured("unchanged", ())
    if not dry_run:
        patch = {"metadata": {"labels": differing}}
        _call(where, "labelling", "Namespace", core.patch_namespace, namespace, patch)
        activity.logger.info("%s labelled: %s", where, "; ".join(d.message for d in drift))
    return Ensured("updated", drift)


# -- NetworkPolicies the bootstrap keeps (#23.3) ---------------------------------------------
class PolicyChange(NamedTuple):
    name: str
    action: Literal["created", "updated", "deleted"]
    why: str


def ensure_network_policies(
    core: k8s.CoreV1Api,
    namespace: str,
    declared: list[dict[str, Any]],
    owned_selector: str,
) -> tuple[PolicyChange, ...]:
    """Make the NetworkPolicies labelled `owned_selector` in `namespace` exactly `declared`:
    create the missing, replace those whose declared fields differ (object_diff's rules,
    the same the drift check reports by), delete those no longer declared. Labels other
    writers added are kept; the spec is replaced whole, so a rule added by hand goes too.
    A stale resourceVersion (409) means another writer: read and compare again. A refusal
    (403) says which grant is missing: a worker whose Role predates the policies has none."""
    try:
        return _ensure_network_policies(core, namespace, declared, owned_selector)
    except ApplicationError as exc:
        if exc.type != ErrorType.KUBERNETES_FORBIDDEN:
            raise
        raise activity_error(
            f"{exc.message}; the bootstrap keeps the release's NetworkPolicies: grant get, "
            f"list, create, update and delete on networkpolicies in {namespace} "
            "(deploy/target-namespace/role.yaml does), or declare network_policy.enabled: "
            "false",
            ErrorType.KUBERNETES_FORBIDDEN,
        ) from None


def _ensure_network_policies(
    core: k8s.CoreV1Api,
    namespace: str,
    declared: list[dict[str, Any]],
    owned_selector: str,
) -> tuple[PolicyChange, ...]:
    net = k8s.NetworkingV1Api(core.api_client)
    serialize = core.api_client.sanitize_for_serialization
    changes: list[PolicyChange] = []
    for body in declared:
        name = body["metadata"]["name"]
        where = f"NetworkPolicy {namespace}/{name}"
        for _ in range(_MAX_ATTEMPTS):
            try:
                live = _call(
                    where,
                    "reading",
                    "NetworkPolicy",
                    net.read_namespaced_network_policy,
                    name,
                    namespace,
                )
            except _NotFound:
                try:
                    _call(
                        where,
                        "creating",
                        "NetworkPolicy",
                        net.create_namespaced_network_policy,
                        namespace,
                        body,
                    )
                except _Conflict:
                    continue
                except _NotFound:
                    # The steps before install_chart create the namespace; helm would fail too.
                    raise activity_error(
                        f"creating {where}: namespace {namespace} not found",
                        ErrorType.KUBERNETES_UNAVAILABLE,
                    ) from None
                changes.append(PolicyChange(name, "created", "missing"))
                break
            live_dict = serialize(live)
            differences = object_diff.compare("NetworkPolicy", live_dict, body)
            if not differences:
                break
            meta = live_dict["metadata"]
            replacement = {
                **body,
                "metadata": {
                    **body["metadata"],
                    "labels": {**(meta.get("labels") or {}), **body["metadata"]["labels"]},
                    "resourceVersion": meta.get("resourceVersion"),
                },
            }
            try:
                _call(
                    where,
                    "updating",
                    "NetworkPolicy",
                    net.replace_namespaced_network_policy,
                    name,
                    namespace,
                    replacement,
                )
            except (_Conflict, _NotFound):
                continue
            changes.append(PolicyChange(name, "updated", ", ".join(d.path for d in differences)))
            break
        else:
            raise activity_error(
                f"{where} kept changing under concurrent writers ({_MAX_ATTEMPTS} attempts); "
                "find the other writer, the step will retry",
                ErrorType.KUBERNETES_UNAVAILABLE,
            )
    wanted = {body["metadata"]["name"] for body in declared}
    listed = _call(
        f"NetworkPolicies in {namespace}",
        "listing",
        "NetworkPolicy",
        lambda: net.list_namespaced_network_policy(namespace, label_selector=owned_selector),
    )
    for item in listed.items or []:
        name = item.metadata.name
        if name in wanted:
            continue
        try:
            _call(
                f"NetworkPolicy {namespace}/{name}",
                "deleting",
                "NetworkPolicy",
                net.delete_namespaced_network_policy,
                name,
                namespace,
            )
        except _NotFound:
            continue
        changes.append(PolicyChange(name, "deleted", "no longer declared"))
    for change in changes:
        activity.logger.info(
            "NetworkPolicy %s/%s %s (%s)", namespace, change.name, change.action, change.why
        )
    return tuple(changes)
