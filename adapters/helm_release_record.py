"""helm's record of a release revision (its storage), for the one change helm has no command
for: marking a revision a killed helm left `pending-*` as `failed`.

Why: helm refuses every operation on a release whose latest revision is pending ("another
operation (install/upgrade/rollback) is in progress"), and its way out, `helm rollback`,
fails when helm was killed mid-apply of a chart that drops objects: the rollback diffs the
pending revision's manifest against the deployed one, and an object the old chart has, the
new one drops and the killed helm had not deleted yet is in the cluster but not in the
"original" manifest (v4: `original object Service with the name "temporal-admintools" not
found`; v3: `no Service with the name ... found`; helm pkg/kube/client.go, v3.17/v4.1). A
revision marked `failed` is what helm itself leaves when an upgrade fails: the next
`helm upgrade` starts from the last `deployed` revision (pkg/action/upgrade.go
prepareUpgrade: `Releases.Deployed`), adopts the objects the killed helm created (they carry
this release's ownership annotations), patches the rest and deletes what the new chart
drops. That is the recovery install_chart runs.

The record is helm's default storage driver, one Secret per revision
(`sh.helm.release.v1.<release>.v<revision>`, type `helm.sh/release.v1`, labels `name`,
`owner=helm`, `status`, `version`, `modifiedAt`), whose `release` key holds the release as
base64 of gzipped JSON (pkg/storage/driver/secrets.go and util.go, unchanged from v3 to v4).
The change is helm's own `SetStatus(failed, description)` plus the `status` and `modifiedAt`
labels its driver writes, sent as a replace carrying the read resourceVersion: a helm that
touched the revision meanwhile makes it fail with 409 (`RecordChanged`) instead of being
overwritten. Other drivers (`HELM_DRIVER=configmap|memory|sql`) are refused
(`UnsupportedDriver`): the caller tells the operator what to do by hand.

The record holds the release's values and manifest: it is never logged or put in a message.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
_GZIP_MAGIC = b"\x1f\x8b\x08"
_SECRET_TYPE = "helm.sh/release.v1"


class UnsupportedDriver(RuntimeError):
    """helm keeps its releases somewhere other than Secrets."""


class RecordChanged(RuntimeError):
    """The revision is no longer pending, or changed while it was being marked."""


def record_name(release: str, revision: int) -> str:
    """The Secret helm keeps revision `revision` of `release` in."""
    return f"sh.helm.release.v1.{release}.v{revision}"


def storage_driver(environ: dict[str, str] | None = None) -> str:
    """The storage driver the helm started with `environ` uses (helm's HELM_DRIVER)."""
    driver = (environ if environ is not None else os.environ).get("HELM_DRIVER", "")
    return driver.strip().lower() or "secret"


def decode_release(data: str) -> dict[str, Any]:
    """A Secret's `release` value (as the API returns it: base64) -> the release as JSON."""
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:3] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    found = json.loads(raw)
    if not isinstance(found, dict):
        raise ValueError("not a helm release")
    return found


def encode_release(release: dict[str, Any]) -> str:
    """The inverse of `decode_release`: gzipped JSON, base64 for helm, base64 for the API."""
    packed = gzip.compress(json.dumps(release, separators=(",", ":")).encode(), compresslevel=9)
    return base64.b64encode(base64.b64encode(packed)).decode()


def mark_failed(
    core: k8s.CoreV1Api,
    namespace: str,
    release: str,
    revision: int,
    description: str,
    environ: dict[str, str] | None = None,
) -> None:
    """Mark pending revision `revision` of `release` failed, as helm marks a failed upgrade.

    Raises UnsupportedDriver, RecordChanged (not pending any more, or changed meanwhile:
    read the history again), ValueError (not a helm record it can read), or the kubernetes
    client's errors (for adapters/errors/kubernetes.py)."""
    driver = storage_driver(environ)
    if driver not in ("secret", "secrets"):
        raise UnsupportedDriver(f"helm stores releases with HELM_DRIVER={driver}")
    name = record_name(release, revision)
    secret: Any = core.read_namespaced_secret(name, namespace)
    labels = dict(secret.metadata.labels or {})
    data = dict(secret.data or {})
    if secret.type != _SECRET_TYPE or labels.get("owner") != "helm" or "release" not in data:
        raise ValueError(f"Secret {namespace}/{name} is not a helm release record")
    body = decode_release(str(data["release"]))
    info = body.setdefault("info", {})
    if info.get("status") not in PENDING or labels.get("status") not in PENDING:
        raise RecordChanged(f"revision {revision} is {info.get('status')}, no longer pending")
    info["status"] = "failed"
    info["description"] = description
    labels.update({"status": "failed", "modifiedAt": str(int(time.time()))})
    secret.metadata.labels = labels
    secret.data = {**data, "release": encode_release(body)}
    try:
        core.replace_namespaced_secret(name, namespace, secret)
    except ApiException as exc:
        if exc.status == 409:
            raise RecordChanged(f"revision {revision} changed while being marked") from None
        raise
