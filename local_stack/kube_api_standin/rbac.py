"""Authorization with the Role, ClusterRole, RoleBinding and ClusterRoleBinding objects the
stand-in stores, as the API server's RBAC authorizer decides (plugin/pkg/auth/authorizer/rbac).

A request is allowed when its user is in `system:masters` (the API server's privileged group,
which skips authorization), or when some rule reachable from the user allows it:
- the bindings consulted are every ClusterRoleBinding, plus the RoleBindings in the request's
  namespace (none for a cluster-scoped request); a binding applies when a subject names the
  user (`User`), one of its groups (`Group`) or its ServiceAccount (`ServiceAccount` with the
  subject's namespace, defaulting to the RoleBinding's own); its `roleRef` is a Role in the
  RoleBinding's namespace or a ClusterRole (which a RoleBinding then grants only in its own
  namespace);
- a rule allows a resource request when its `verbs`, `apiGroups`, `resources` and
  `resourceNames` all match: `*` matches anything, a subresource is asked for as
  `resource/subresource` (`pods/portforward`, `pods/log`, `deployments/scale`; `*/scale`
  matches any resource's), and `resourceNames` restricts the rule to requests that name an
  object (so never create, list, watch or deletecollection); a non-resource request
  (discovery, /version, /healthz) needs a ClusterRole rule whose `nonResourceURLs` match the
  path (exactly, or by a trailing `*`).
A missing role named by an applicable binding is reported in the denial's reason (`RBAC: role
... not found`), as the real authorizer does. Denials answer 403 Forbidden with the API
server's message: `pods "x" is forbidden: User "system:serviceaccount:tools:worker" cannot
create resource "pods/portforward" in API group "" in the namespace "my-app"`.

WebSocket upgrades of `pods/exec`, `pods/attach` and `pods/portforward` are GET requests (verb
`get`); they are also authorized for `create`, as Kubernetes 1.35 does by default
(`AuthorizePodWebsocketUpgradeCreatePermission`) and as SPDY upgrades (POST) always were, so
a Role written against the stand-in works on clusters before and after 1.35.

The bootstrap policy a new cluster has is stored on every reset: `cluster-admin` (bound to
`system:masters`), `system:discovery` and `system:basic-user` (bound to
`system:authenticated`: discovery, /version, /openapi, self access reviews) and
`system:public-info-viewer` (bound to every user, anonymous included: /version, /healthz,
/livez, /readyz).

Simplifications: aggregated ClusterRoles (`aggregationRule`) are not aggregated; writing a
Role or binding needs only the verbs on that resource, not the escalation checks (holding the
permissions granted, or `escalate`/`bind`); impersonation (`--as`) is not served.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .identity import MASTERS, RequestInfo, User, service_account_user

Obj = dict[str, Any]
RBAC = "rbac.authorization.k8s.io/v1"
CONNECT_SUBRESOURCES = ("exec", "attach", "portforward")
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    rules: tuple[Obj, ...] = field(default=(), compare=False)
    """The rule that allowed the request (empty when denied or for system:masters)."""


def rule_allows(rule: Obj, info: RequestInfo, path: str) -> bool:
    """Does one PolicyRule allow the request (RBAC's RuleAllows)?"""
    verbs = rule.get("verbs") or []
    if "*" not in verbs and info.verb not in verbs:
        return False
    if not info.resource:  # a non-resource request
        return any(
            url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1]))
            for url in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and info.group not in groups:
        return False
    wanted = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    if not any(
        r in ("*", wanted) or (info.subresource and r == f"*/{info.subresource}")
        for r in rule.get("resources") or []
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or info.name in names


def _applies(subject: Obj, user: User, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and service_account_user(namespace, name) == user.name
    return False


def forbidden(user: User, info: RequestInfo, path: str, reason: str = "") -> ApiError:
    """The API server's 403 for a denied request (responsewriters.Forbidden)."""
    if not info.resource:
        message = f'forbidden: User "{user.name}" cannot {info.verb} path "{path}"'
        return ApiError(403, "Forbidden", message + (f": {reason}" if reason else ""))
    resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    scope = f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope"
    why = (
        f'User "{user.name}" cannot {info.verb} resource "{resource}" in API group '
        f'"{info.group}" {scope}' + (f": {reason}" if reason else "")
    )
    qualified = f"{info.resource}.{info.group}" if info.group else info.resource
    subject = f'{qualified} "{info.name}"' if info.name else qualified
    details = {"name": info.name, "group": info.group, "kind": info.resource}
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", details)


class Authorizer:
    """RBAC over a store's RBAC objects; `objects(kind)` lists the stored ones of a kind."""

    def __init__(self, objects: Any) -> None:
        self._objects = objects

    def authorize(self, user: User, info: RequestInfo, path: str) -> Decision:
        if MASTERS in user.groups:
            return Decision(True)
        errors: list[str] = []
        for rules in self._rules_for(user, info.namespace, errors):
            for rule in rules:
                if rule_allows(rule, info, path):
                    return Decision(True, rules=(rule,))
        return Decision(False, f"RBAC: {', '.join(errors)}" if errors else "")

    def _rules_for(self, user: User, namespace: str, errors: list[str]) -> Iterator[list[Obj]]:
        bindings = [("", b) for b in self._objects("ClusterRoleBinding")]
        if namespace:
            bindings += [
                (namespace, b)
                for b in self._objects("RoleBinding")
                if b["metadata"].get("namespace") == namespace
            ]
        for binding_ns, binding in bindings:
            if not any(_applies(s, user, binding_ns) for s in binding.get("subjects") or []):
                continue
            ref = binding.get("roleRef") or {}
            kind, name = ref.get("kind"), ref.get("name")
            if kind == "Role" and binding_ns:
                role = self._find("Role", name, binding_ns)
                what = f'role.rbac.authorization.k8s.io "{name}" not found'
            elif kind == "ClusterRole":
                role = self._find("ClusterRole", name, None)
                what = f'clusterrole.rbac.authorization.k8s.io "{name}" not found'
            else:
                continue
            if role is None:
                errors.append(what)
                continue
            yield list(role.get("rules") or [])

    def _find(self, kind: str, name: str | None, namespace: str | None) -> Obj | None:
        return next(
            (
                o
                for o in self._objects(kind)
                if o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace
            ),
            None,
        )


def connect_needs_create(method: str, info: RequestInfo, websocket: bool) -> bool:
    """A WebSocket upgrade (GET) of exec/attach/portforward is authorized for `create` too."""
    return method == "GET" and websocket and info.subresource in CONNECT_SUBRESOURCES


def _cluster_role(name: str, rules: list[Obj]) -> tuple[str, Obj]:
    meta = {"name": name, "labels": dict(BOOTSTRAP_LABELS)}
    return "ClusterRole", {
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": meta,
        "rules": rules,
    }


def _binding(name: str, groups: list[str]) -> tuple[str, Obj]:
    meta = {"name": name, "labels": dict(BOOTSTRAP_LABELS)}
    subjects = [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups
    ]
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
    body = {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": meta}
    return "ClusterRoleBinding", {**body, "roleRef": ref, "subjects": subjects}


_PUBLIC = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
_BOOTSTRAP: list[tuple[str, Obj]] = [
    _cluster_role(
        "cluster-admin",
        [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ],
    ),
    _binding("cluster-admin", [MASTERS]),
    _cluster_role(
        "system:discovery",
        [
            {
                "nonResourceURLs": [
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/openapi",
                    "/openapi/*",
                    *_PUBLIC,
                ],
                "verbs": ["get"],
            }
        ],
    ),
    _binding("system:discovery", ["system:authenticated"]),
    _cluster_role(
        "system:basic-user",
        [
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            }
        ],
    ),
    _binding("system:basic-user", ["system:authenticated"]),
    _cluster_role("system:public-info-viewer", [{"nonResourceURLs": _PUBLIC, "verbs": ["get"]}]),
    _binding("system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]),
]


def bootstrap_policy() -> list[tuple[str, Obj]]:
    """(kind, object) of the default ClusterRoles and ClusterRoleBindings of a new cluster."""
    return copy.deepcopy(_BOOTSTRAP)


def access_review(authorizer: Authorizer, spec: Obj, user: User | None) -> Obj:
    """The status of a SubjectAccessReview (`user` None: the spec's user and groups) or a
    SelfSubjectAccessReview (`user`: the caller)."""
    if user is None:
        user = User(str(spec.get("user") or ""), tuple(spec.get("groups") or ()))
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if isinstance(resource, dict):
        info = RequestInfo(
            verb=str(resource.get("verb") or ""),
            resource=str(resource.get("resource") or ""),
            subresource=str(resource.get("subresource") or ""),
            group=str(resource.get("group") or ""),
            namespace=str(resource.get("namespace") or ""),
            name=str(resource.get("name") or ""),
        )
        path = ""
    elif isinstance(non_resource, dict):
        info = RequestInfo(verb=str(non_resource.get("verb") or ""))
        path = str(non_resource.get("path") or "")
    else:
        raise ApiError(
            422,
            "Invalid",
            "spec.resourceAttributes: Invalid value: exactly one of nonResourceAttributes or "
            "resourceAttributes must be specified",
        )
    decision = authorizer.authorize(user, info, path)
    status: Obj = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status
