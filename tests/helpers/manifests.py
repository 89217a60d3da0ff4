"""Reading rendered (or deployed) chart manifests the way the cluster would use them, for
the render checks and the upgrade tests: the server config a pod actually mounts, the
password each store gets, what a Deployment runs. Independent of how the values were
built, so the tests compare manifests with the declaration, never values with themselves.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

Docs = list[dict[str, Any]]
SERVER_SERVICES = ("frontend", "history", "matching", "worker")
CONFIG_PATH = "/etc/temporal/config/config_template.yaml"
# What the server reads from its environment inside its config template (dockerize or sprig).
_ENV_REFERENCE = re.compile(r"\{\{[^}]*?\b(TEMPORAL_[A-Z_]+)[^}]*\}\}")
_OTHER_TEMPLATE = re.compile(r"\{\{.*?\}\}")
SQL_SETTINGS = (
    "pluginName",
    "databaseName",
    "connectAddr",
    "user",
    "maxConns",
    "maxIdleConns",
    "maxConnLifetime",
    "tls",
)


def parse_manifests(text: str) -> Docs:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def objects(docs: Docs, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def server_deployments(docs: Docs) -> dict[str, dict[str, Any]]:
    deployments = objects(docs, "Deployment")
    return {svc: deployments[f"temporal-{svc}"] for svc in SERVER_SERVICES}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def mounted_server_config(docs: Docs, raw: bool = False) -> Any:
    """The server config the frontend pod mounts at CONFIG_PATH (whichever ConfigMap that
    is in this chart version); parsed, with `{{ ... TEMPORAL_X ... }}` read as `ENV(TEMPORAL_X)`
    and other template expressions as `PLACEHOLDER`, or the raw text."""
    frontend = server_deployments(docs)["frontend"]
    mount = next(m for m in container(frontend)["volumeMounts"] if m["mountPath"] == CONFIG_PATH)
    volumes = {v["name"]: v for v in frontend["spec"]["template"]["spec"]["volumes"]}
    config_map = volumes[mount["name"]]["configMap"]["name"]
    text = objects(docs, "ConfigMap")[config_map]["data"][
        mount.get("subPath") or "config_template.yaml"
    ]
    if raw:
        return text
    text = _ENV_REFERENCE.sub(r"ENV(\1)", text)
    return yaml.safe_load(_OTHER_TEMPLATE.sub("PLACEHOLDER", text))


def mounted_dynamic_config(docs: Docs, service: str = "frontend") -> tuple[str, Any]:
    """(ConfigMap name, parsed content) of the dynamic config file a server pod reads: the
    path its server config's `dynamicConfigClient.filepath` names, followed through the pod's
    volume mount to the ConfigMap key behind it."""
    filepath = mounted_server_config(docs)["dynamicConfigClient"]["filepath"]
    deployment = server_deployments(docs)[service]
    mount = next(
        m
        for m in container(deployment)["volumeMounts"]
        if filepath.startswith(m["mountPath"].rstrip("/") + "/")
    )
    relative = filepath[len(mount["mountPath"].rstrip("/")) + 1 :]
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    )
    source = volume["configMap"]
    key = next((i["key"] for i in source.get("items") or [] if i["path"] == relative), relative)
    text = objects(docs, "ConfigMap")[source["name"]]["data"][key]
    return source["name"], yaml.safe_load(text)


def _secret_of(variable: str, docs: Docs) -> tuple[str, str]:
    """(Secret, key) every server pod fills `variable` from; they must all agree."""
    found = set()
    for svc, dep in server_deployments(docs).items():
        env = {e["name"]: e for e in container(dep).get("env") or []}
        assert variable in env, f"{svc} has no {variable}"
        ref = env[variable]["valueFrom"]["secretKeyRef"]
        found.add((ref["name"], ref["key"]))
    assert len(found) == 1, f"server pods disagree on {variable}: {found}"
    return found.pop()


def store_settings(docs: Docs) -> dict[str, dict[str, Any]]:
    """Per store (by role: `default`, `visibility`): the SQL settings the server uses and
    `password` as the (Secret, key) the pods read it from."""
    persistence = mounted_server_config(docs)["persistence"]
    roles = {"default": persistence["defaultStore"], "visibility": persistence["visibilityStore"]}
    settings = {}
    for role, name in roles.items():
        sql = persistence["datastores"][name]["sql"]
        if "passwordCommand" in sql:
            password = _secret_file_read_by(sql["passwordCommand"], docs)
        else:
            match = re.fullmatch(r"ENV\((TEMPORAL_[A-Z_]+)\)", str(sql.get("password")))
            assert match, (
                f"{role} store password is not read from the environment: {sql.get('password')!r}"
            )
            password = _secret_of(match.group(1), docs)
        settings[role] = {**{key: sql.get(key) for key in SQL_SETTINGS}, "password": password}
    return settings


def _secret_file_read_by(command: dict[str, Any], docs: Docs) -> tuple[str, str]:
    """(Secret, key) of the file a `passwordCommand` cats, as every server pod mounts it;
    the command must be a plain `cat FILE` (the server takes its stdout as the password)."""
    assert command["command"] in ("/bin/cat", "cat"), command
    (path,) = command["args"]
    found = set()
    for svc, dep in server_deployments(docs).items():
        pod = dep["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = [
            m
            for m in container(dep).get("volumeMounts") or []
            if path.startswith(m["mountPath"].rstrip("/") + "/") and "subPath" not in m
        ]
        assert len(mounts) == 1, f"{svc} mounts no single volume holding {path}"
        secret = volumes[mounts[0]["name"]]["secret"]
        relative = path[len(mounts[0]["mountPath"].rstrip("/")) + 1 :]
        keys = [i["key"] for i in secret.get("items") or [] if i["path"] == relative]
        found.add((secret["secretName"], keys[0] if keys else relative))
    assert len(found) == 1, f"server pods disagree on {path}: {found}"
    return found.pop()


def cluster_meaning(docs: Docs) -> dict[str, Any]:
    """What a rendering means for the cluster, without what each chart version names or
    labels differently: database connections and passwords, replicas, resources, mounted
    ConfigMaps of the environment (not the chart's own), and the Web UI ingress."""
    deployments = {}
    for name, dep in objects(docs, "Deployment").items():
        spec = dep["spec"]["template"]["spec"]
        config_maps = {
            v["name"]: v["configMap"]["name"] for v in spec.get("volumes") or [] if "configMap" in v
        }
        mounts = sorted(
            (m["mountPath"], m.get("subPath"), config_maps[m["name"]])
            for m in container(dep).get("volumeMounts") or []
            if m["name"] in config_maps and not config_maps[m["name"]].startswith("temporal-")
        )
        deployments[name] = {
            "replicas": dep["spec"]["replicas"],
            "resources": container(dep).get("resources"),
            "mounts": mounts,
        }
    ingresses = {
        name: {
            "class": ing["spec"].get("ingressClassName"),
            "annotations": ing["metadata"].get("annotations"),
            "hosts": [r.get("host") for r in ing["spec"].get("rules") or []],
            "tls": ing["spec"].get("tls"),
        }
        for name, ing in objects(docs, "Ingress").items()
    }
    return {"stores": store_settings(docs), "deployments": deployments, "ingresses": ingresses}
