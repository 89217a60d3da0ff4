"""Who sent a request and what it asked for, as the real API server's authentication and
RequestInfo see it; the stand-in records both with every request in its request log, and
rbac.py decides with them whether the request is allowed.

Authentication (bearer tokens only, over TLS: client-go never sends credentials over plain
HTTP, which is why the stand-in serves HTTPS):
- the stand-in's admin token (in every kubeconfig `write_kubeconfig` writes by default) is
  `standin-admin` in group `system:masters`, which the API server lets do anything;
- `KubeApiStandIn.issue_token(user)` adds a static token for any user name (a ServiceAccount's
  name `system:serviceaccount:<namespace>:<name>` gets that ServiceAccount's groups);
- the TokenRequest API (`POST .../serviceaccounts/<name>/token`, what `kubectl create token`
  calls and what kubelet projects into a pod) issues a token bound to the ServiceAccount
  object: valid until its `expirationSeconds` pass (default 1 hour) and only while that
  ServiceAccount (same uid) exists, as the real service-account token authenticator checks.
An unknown, expired or orphaned token is answered 401 Unauthorized. A request without
credentials is `system:anonymous` in group `system:unauthenticated`; every authenticated user
is also in `system:authenticated`. Basic auth and client certificates are not served.

Request attributes follow the API server's RequestInfo: `verb` is get / list / watch (GET on
one object, a collection, or with `watch`), create (POST), update (PUT), patch (PATCH), delete
or deletecollection (DELETE on one object or a collection); `resource`, `subresource`, `group`,
`namespace` and `name` come from the path (the namespace of `/api/v1/namespaces/NAME` is
NAME, so a Role can grant reading its own Namespace object). Paths outside /api and /apis
(discovery, /version, /openapi, health) are non-resource requests: verb `get` and no resource
(the log's `path` says which).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ApiError

ADMIN_USER = "standin-admin"
ADMIN_TOKEN = "standin-dummy-token"  # what every kubeconfig written before tokens existed had
ANONYMOUS = "system:anonymous"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
DEFAULT_TOKEN_SECONDS = 3600


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()


def service_account_user(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def user_of(name: str) -> User:
    """The groups the authenticators give a user name: a ServiceAccount's are
    `system:serviceaccounts` and `system:serviceaccounts:<namespace>`."""
    if name == ADMIN_USER:
        return User(name, (MASTERS, AUTHENTICATED))
    if name.startswith(SERVICE_ACCOUNT_PREFIX):
        namespace = name[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")[0]
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")
        return User(name, (*groups, AUTHENTICATED))
    return User(name, (AUTHENTICATED,))


@dataclass(frozen=True)
class BoundToken:
    """A TokenRequest's token: the ServiceAccount (by uid) it is bound to and its expiry."""

    namespace: str
    name: str
    uid: str
    expires: float


class Tokens:
    """Bearer token -> user. Survives `reset()`: static tokens are the cluster's authentication
    configuration, and a bound token dies with its ServiceAccount anyway."""

    def __init__(self) -> None:
        self._users: dict[str, str] = {ADMIN_TOKEN: ADMIN_USER}
        self._bound: dict[str, BoundToken] = {}

    def issue(self, user: str) -> str:
        token = f"standin-{secrets.token_urlsafe(18)}"
        self._users[token] = user
        return token

    def issue_bound(self, namespace: str, name: str, uid: str, seconds: int) -> tuple[str, float]:
        """A token for ServiceAccount namespace/name (uid), valid for `seconds`."""
        token = f"standin-sa-{secrets.token_urlsafe(24)}"
        expires = time.time() + seconds
        self._bound[token] = BoundToken(namespace, name, uid, expires)
        return token, expires

    def user(
        self, authorization: str | None, service_account_uid: Callable[[str, str], str | None]
    ) -> User:
        """The authenticated user of a request's Authorization header;
        `service_account_uid(namespace, name)` is the live ServiceAccount's uid (None: gone)."""
        if not authorization:
            return User(ANONYMOUS, (UNAUTHENTICATED,))
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        credential = credential.strip()
        bound = self._bound.get(credential)
        if bound is not None:
            alive = service_account_uid(bound.namespace, bound.name) == bound.uid
            if not alive or time.time() >= bound.expires:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return user_of(service_account_user(bound.namespace, bound.name))
        name = self._users.get(credential)
        if name is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user_of(name)


@dataclass(frozen=True)
class RequestInfo:
    verb: str
    resource: str = ""
    subresource: str = ""
    group: str = ""
    namespace: str = ""
    name: str = ""

    def as_log(self) -> dict[str, Any]:
        return asdict(self)


def request_info(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return RequestInfo(verb=method.lower())
    rest = parts[1:] if parts[0] == "api" else parts[2:]
    group = "" if parts[0] == "api" else (parts[1] if len(parts) > 1 else "")
    rest = rest[1:]  # the version
    watch = bool(rest) and rest[0] == "watch"
    rest = rest[1:] if watch else rest
    if not rest:
        return RequestInfo(verb=method.lower())
    namespace = ""
    if len(rest) == 3 and rest[0] == "namespaces" and rest[2] in ("status", "finalize"):
        return RequestInfo(
            _verb(method, rest[1], query, watch), "namespaces", rest[2], group, rest[1], rest[1]
        )
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    elif len(rest) == 2 and rest[0] == "namespaces":
        # /api/v1/namespaces/NAME is the namespace object itself
        namespace = rest[1]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    return RequestInfo(
        verb=_verb(method, name, query, watch),
        resource=resource,
        subresource=sub,
        group=group,
        namespace=namespace,
        name=name,
    )


def _verb(method: str, name: str, query: dict[str, str], watch: bool) -> str:
    watch = watch or query.get("watch") in ("1", "true")
    return {
        "GET": "watch" if watch else ("get" if name else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }.get(method, method.lower())
