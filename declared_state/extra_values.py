"""What `extra_values` may not do: override what the environment model guarantees, or carry a
secret.

`extra_values` is deep-merged over the chart values `build_chart_values` makes from the model,
for the chart settings the model does not cover. A value there that replaced one the model
sets would silently undo what the model exists to guarantee (TLS to the database with host
verification, the Web UI's access control, passwords read from the existing Secret, the
schema jobs off) while the environment file still declares the opposite. So:

- Every path where the model sets a value is the model's. The paths come from building the
  values of this very environment without its extra_values, not from a list of one chart
  layout's keys, so a chart line with another layout (1.x's `persistence.datastores`) is
  covered as soon as `build_chart_values` renders it. `extra_values` may add values beside
  the model's and never replace one: a leaf, a list (lists replace, never merge) or a whole
  map. Maps are merged, so adding a key under a map the model sets is fine.
- A few paths are guarded whether or not the model sets them for this environment: the
  database connection's TLS, password and address settings, the Web UI's access-control
  annotations (an allow-list added where the model uses auth, a snippet that opens access),
  `server.dynamicConfig` (declared in `dynamic_config`, checked there and kept by the
  drift check; a key added beside the model's would escape both), `server.archival` and
  `server.namespaceDefaults` (declared in `archival`), and the Web UI's sign-in
  variables (`TEMPORAL_AUTH_*` in `web.additionalEnv`, declared in `web_ui`) even where the
  model declares no sign-in.
- The message names the model key to use instead (`HINTS`, matched on the words of the path,
  so `server.config.persistence.default.sql.tls` and `...datastores.default.sql.tls` find
  the same hint), or says why the value is fixed.
- Keys that look like they hold a secret value (password, token, API or access key, ...) are
  refused anywhere in `extra_values`: an environment travels in workflow inputs, and so in
  the workflow history, where no secret may ever be.

Failure modes: a model key the chart reads under a path no HINT matches still gets refused
(with a generic hint); a secret under an innocent-looking key name is not recognised (the
rule is about key names, never values).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from declared_state.models import Environment

ValuesPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Hint:
    pattern: re.Pattern[str]
    advice: str
    """What to do instead; `{0}`, `{1}` are the pattern's groups."""
    always: bool = False
    """Refused even where the model sets no value for this environment."""


def _hint(pattern: str, advice: str, *, always: bool = False) -> Hint:
    return Hint(re.compile(pattern), advice, always)


_SQL = r"persistence\.(.+\.)?"
HINTS: tuple[Hint, ...] = (
    _hint(
        _SQL + r"tls(\..+)?$",
        "TLS to the database is always on and verifies the server's name: set ca_bundle and "
        "database.tls_server_name",
        always=True,
    ),
    _hint(
        _SQL + r"(password|passwordCommand|existingSecret|secretKey|secretName)$",
        "the stores read their passwords from database.kubernetes_secret (filled from "
        "database.password_source)",
        always=True,
    ),
    _hint(
        _SQL + r"(host|port|connectAddr|connectProtocol)$",
        "use rds.endpoint and rds.port",
        always=True,
    ),
    _hint(
        _SQL + r"(driver|driverName|pluginName)$",
        "both stores are MySQL 8 on RDS (rds.engine)",
        always=True,
    ),
    _hint(_SQL + r"(database|databaseName)$", "use database.default_store / visibility_store"),
    _hint(_SQL + r"user$", "use database.user"),
    _hint(_SQL + r"maxConns$", "use database.max_conns"),
    _hint(_SQL + r"maxConnLifetime$", "use database.max_conn_lifetime"),
    _hint(r"^server\.config\.persistence(\..+)?$", "the stores are declared by rds and database"),
    _hint(
        r"^server\.(frontend|history|matching|worker)\.replicaCount$", "use services.{0}.replicas"
    ),
    _hint(
        r"^server\.(frontend|history|matching|worker)\.resources(\..+)?$",
        "use services.{0}.resources",
    ),
    _hint(r"^(web)\.replicaCount$", "use services.{0}.replicas"),
    _hint(r"^(web|admintools)\.resources(\..+)?$", "use services.{0}.resources"),
    _hint(
        r"^server\.additional(Volumes|VolumeMounts)$",
        "the CA bundle's volume is set from ca_bundle (config_map, key, mount_path); a list here "
        "would replace it",
    ),
    _hint(
        r"^web\.ingress\.annotations\..*(whitelist|allowlist|denylist)-source-range$",
        "use web_ingress.access.allowed_cidrs",
        always=True,
    ),
    _hint(
        r"^web\.ingress\.annotations\..*/auth-.*$",
        "use web_ingress.access.auth_url and auth_signin",
        always=True,
    ),
    _hint(
        r"^web\.ingress\.annotations\..*snippet$",
        "a snippet can change who reaches the Web UI: declare access in web_ingress.access",
        always=True,
    ),
    _hint(
        r"^web\.additionalEnv$",
        "the Web UI's sign-in is declared in web_ui (auth: oidc); a list here would replace it",
    ),
    _hint(r"^web\.ingress\.annotations\..*/proxy-body-size$", "use web_ingress.proxy_body_size"),
    _hint(
        r"^web\.ingress\.annotations$",
        "add annotations one by one (web.ingress.annotations.<name>); the map holds the access "
        "control",
    ),
    _hint(r"^web\.ingress\.tls(\..+)?$", "use web_ingress.tls_secret"),
    _hint(r"^web\.ingress\.hosts(\..+)?$", "use web_ingress.host"),
    _hint(r"^web\.ingress\.className$", "use web_ingress.class_name"),
    _hint(r"^web\.ingress(\.enabled)?$", "use web_ingress.enabled"),
    _hint(
        r"^schema(\..+)?$|\.(createDatabase|manageSchema)(\..+)?$",
        "the chart's schema jobs stay off: the schema is managed with temporal-sql-tool and "
        "checked by check_database",
    ),
    _hint(r"^server\.config\.namespaces(\..+)?$", "namespaces are declared in temporal_namespaces"),
    _hint(
        r"^server\.dynamicConfig(\..+)?$",
        "declare it in dynamic_config (same format: key -> [{{value, constraints}}]), where it is "
        "checked before anything starts and kept by the drift check",
        always=True,
    ),
    _hint(
        r"^server\.(archival|namespaceDefaults)(\..+)?$",
        "declare it in archival (and temporal_namespaces[].archival), where the server's rules "
        "are checked before anything starts",
        always=True,
    ),
    _hint(
        r"^(cassandra|mysql|postgresql|elasticsearch)(\..+)?$",
        "the chart's bundled {0} stays off: Temporal runs on the RDS database",
    ),
    _hint(r"^(prometheus|grafana)(\..+)?$", "temporal-bootstrap keeps the chart's bundled {0} off"),
    _hint(r"^(web|admintools)\.enabled$", "temporal-bootstrap always deploys {0}"),
    _hint(
        r"^(server|admintools|web)\.image\.(repository|tag)$",
        "use images.server, images.admin_tools or images.web (a repository and/or a tag): the "
        "upgrade's schema Job and the image preflight read them there",
    ),
)
GENERIC_ADVICE = "temporal-bootstrap sets it from the environment model"
# The Temporal UI server's sign-in settings (TEMPORAL_AUTH_ENABLED, ..._PROVIDER_URL, ...).
UI_AUTH_PREFIX = "TEMPORAL_AUTH_"

# Words of a key name (camelCase, snake_case, kebab-case) that mean it holds a secret value.
_SECRET_WORDS = frozenset({"password", "passwd", "pwd", "passphrase", "token", "credentials"})
_SECRET_PAIRS = frozenset(
    {("api", "key"), ("access", "key"), ("private", "key"), ("client", "secret")}
)
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def looks_secret(key: str) -> bool:
    """True for key names that hold a secret value (`password`, `apiKey`, `secretAccessKey`,
    `auth_token`, `secret`), False for references to one (`existingSecret`, `secretName`)."""
    words = [w.lower() for w in _WORD.findall(key)]
    if words == ["secret"] or any(w in _SECRET_WORDS for w in words):
        return True
    if any(w in ("apikey", "accesskey", "privatekey") for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:], strict=False))


def secret_like_keys(extra_values: Any) -> list[tuple[ValuesPath, str]]:
    """Every key in `extra_values` (maps inside lists too) whose name says it holds a secret."""
    found: list[tuple[ValuesPath, str]] = []

    def walk(node: Any, path: ValuesPath) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if looks_secret(str(key)):
                    found.append(
                        (
                            (*path, str(key)),
                            "looks like a secret value (password, token, key): environment files "
                            "travel in workflow history, so secrets never go here; the DB "
                            "passwords come from database.password_source",
                        )
                    )
                else:
                    walk(value, (*path, str(key)))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, (*path, index))

    walk(extra_values, ())
    return found


def _leaves(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) of every leaf: maps are inner nodes, anything else (lists, an empty map)
    is a leaf."""
    if isinstance(values, Mapping) and values:
        for key, value in values.items():
            yield from _leaves(value, (*prefix, str(key)))
    elif prefix:
        yield prefix, values


def _advice(dotted: str) -> tuple[str, bool]:
    for hint in HINTS:
        if match := hint.pattern.search(dotted):
            return hint.advice.format(*match.groups()), hint.always
    return GENERIC_ADVICE, False


def model_overrides(env: Environment) -> list[tuple[ValuesPath, str]]:
    """The paths in env.extra_values that would replace a chart value the model sets (or a
    guarded one), each with what to do instead."""
    if not env.extra_values:
        return []
    # Imported here: chart_values imports the loader, which imports this module.
    from declared_state.chart_values import build_chart_values

    model_values = build_chart_values(env.model_copy(update={"extra_values": {}}))
    model_leaves = {path for path, _ in _leaves(model_values)}
    model_maps = {leaf[:i] for leaf in model_leaves for i in range(1, len(leaf))}
    found: list[tuple[ValuesPath, str]] = []
    for path, value in _leaves(env.extra_values):
        if any(looks_secret(part) for part in path):
            continue  # refused as a secret already (secret_like_keys)
        if path in model_maps and isinstance(value, Mapping):
            continue  # an empty map merged into one of the model's: changes nothing
        advice, always = _advice(".".join(path))
        replaces = (
            path in model_leaves
            or path in model_maps
            or any(path[:i] in model_leaves for i in range(1, len(path)))
        )
        if replaces or always:
            found.append((path, f"overrides a chart value the environment model owns; {advice}"))
    reported = {path for path, _ in found}
    for index, item in enumerate(_web_env(env.extra_values)):
        name = item.get("name") if isinstance(item, Mapping) else None
        where: ValuesPath = ("web", "additionalEnv", index)
        if isinstance(name, str) and name.startswith(UI_AUTH_PREFIX) and where[:2] not in reported:
            found.append(
                (
                    where,
                    f"{name} is the Web UI's sign-in, which the environment model owns; declare "
                    "it in web_ui (auth: oidc, with the client secret as client_secret_ref)",
                )
            )
    return found


def _web_env(extra_values: Mapping[str, Any]) -> list[Any]:
    web = extra_values.get("web")
    found = web.get("additionalEnv") if isinstance(web, Mapping) else None
    return found if isinstance(found, list) else []
