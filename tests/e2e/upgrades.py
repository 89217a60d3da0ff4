"""What the upgrade end-to-end tests share: running `upgrade`, reading snapshots, the
stand-in's write log and deployed manifests."""

from __future__ import annotations

from pathlib import Path

import yaml

from declared_state.versions import schema_versions_for_server, version_key
from tests.e2e.conftest import run
from tests.helpers import MIRROR_CHARTS
from tests.helpers.manifests import parse_manifests

SIX_HOPS = ["0.55.0", "0.63.0", "0.67.0", "0.73.2", "0.74.0", "1.6.0"]
SHARED_CHARTS = MIRROR_CHARTS


def chart_pin(chart: str, component: str) -> str:
    """`repository:tag` of `component` (server, admintools, web) as chart `chart`'s own
    values.yaml pins it: the independent expectation for the images a hop runs."""
    values = yaml.safe_load((SHARED_CHARTS / f"temporal-{chart}" / "values.yaml").read_text())
    image = values[component]["image"]
    return f"{image['repository']}:{image['tag']}"


def upgrade(operator, env_dir: Path, *args: str, timeout: float = 600):
    return operator.starter(
        "upgrade", "local", "--environments-dir", str(env_dir), *args, timeout=timeout
    )


def snapshots(local_aws) -> list[str]:
    found = local_aws.client("rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    return sorted(s["DBSnapshotIdentifier"] for s in found)


def writes_in(kube_standin, namespace: str, since: int) -> list[dict]:
    """The stand-in's writes after `since` that concern `namespace` or the databases."""
    return [
        w
        for w in kube_standin.writes[since:]
        if w["method"] == "SQL" or f"/namespaces/{namespace}/" in w["path"]
    ]


def assert_schema_first(writes: list[dict], start: tuple[str, str]) -> list[str]:
    """Replays the log: every Deployment write that runs a server release comes after the
    schema rows reached what that release needs. Returns the releases rolled out, in order."""
    schema = {"temporal": start[0], "temporal_visibility": start[1]}
    rolled: list[str] = []
    for write in writes:
        if write["method"] == "SQL":
            schema[write["schema"]["database"]] = write["schema"]["to"]
            continue
        if "/deployments/" not in write["path"] or write["status"] >= 400:
            continue
        for image in write.get("images") or []:
            if not image.startswith("temporalio/server:"):
                continue
            release = image.rpartition(":")[2]
            needs = schema_versions_for_server(release)
            assert needs is not None
            assert version_key(schema["temporal"]) >= version_key(needs.default_store), (
                write,
                schema,
            )
            assert version_key(schema["temporal_visibility"]) >= version_key(
                needs.visibility_store
            ), (write, schema)
            if not rolled or rolled[-1] != release:
                rolled.append(release)
    return rolled


def job_posts(writes: list[dict]) -> list[str]:
    return [w["path"] for w in writes if w["method"] == "POST" and w["path"].endswith("/jobs")]


def manifest(operator, namespace: str, revision: int) -> list[dict]:
    proc = run(
        [
            operator.env["HELM_BIN"],
            "get",
            "manifest",
            "temporal",
            "-n",
            namespace,
            "--revision",
            str(revision),
            "--kubeconfig",
            operator.env["KUBECONFIG"],
        ],
        operator.env,
        60,
    )
    assert proc.returncode == 0, proc.stderr
    return parse_manifests(proc.stdout)
