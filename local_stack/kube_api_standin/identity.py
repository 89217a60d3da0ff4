"""Who sent a request and what it asked for, as the real API server's authentication and
RequestInfo see it; the stand-in records both with every request in its request log.

Authentication: a bearer token maps to a user name through the stand-in's token table (the
kubeconfigs it writes carry such a token; `KubeApiStandIn.issue_token(user)` adds one, e.g. for
a ServiceAccount `system:serviceaccount:<namespace>:<name>`). An unknown token is answered
401 Unauthorized, as a real API server does; a request without credentials is
`system:anonymous`. Basic auth and client certificates are not served (the stand-in speaks
plain HTTP on loopback). There is no authorization: every authenticated user may do anything,
and what a user did is read back from the request log.

Request attributes follow the API server's RequestInfo: `verb` is get / list / watch (GET on
one object, a collection, or with `watch`), create (POST), update (PUT), patch (PATCH), delete
or deletecollection (DELETE on one object or a collection); `resource`, `subresource`, `group`,
`namespace` and `name` come from the path. Paths outside /api and /apis (discovery, /version,
/openapi, health) are non-resource requests: verb `get` and no resource (the log's `path`
says which).
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ApiError

ADMIN_USER = "standin-admin"
ADMIN_TOKEN = "standin-dummy-token"  # what every kubeconfig written before tokens existed had
ANONYMOUS = "system:anonymous"


class Tokens:
    """Bearer token -> user name. Survives `reset()`: it is the cluster's authentication
    configuration, not an object in it."""

    def __init__(self) -> None:
        self._users = {ADMIN_TOKEN: ADMIN_USER}

    def issue(self, user: str) -> str:
        token = f"standin-{secrets.token_urlsafe(18)}"
        self._users[token] = user
        return token

    def user(self, authorization: str | None) -> str:
        """The authenticated user of a request's Authorization header."""
        if not authorization:
            return ANONYMOUS
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        user = self._users.get(credential.strip())
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user


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
