"""Contract tests against the stand-in with the real kubectl."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

from .conftest import KUBECTL

MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop, labels: {app: shop}}
data: {mode: "blue"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: shop, labels: {app: shop}}
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
        - name: shop
          image: shop:1
          env: [{name: MODE, value: blue}]
"""


def test_apply_get_and_delete(run, kubeconfig: Path, tmp_path: Path) -> None:
    kubectl = (KUBECTL, "--kubeconfig", str(kubeconfig))
    manifest = tmp_path / "shop.yaml"
    manifest.write_text(MANIFEST)

    out = run(*kubectl, "apply", "-f", str(manifest)).stdout
    assert "namespace/shop created" in out and "deployment.apps/shop created" in out
    run(*kubectl, "-n", "shop", "rollout", "status", "deployment/shop", "--timeout=20s")

    listed = json.loads(
        run(*kubectl, "-n", "shop", "get", "configmaps", "-l", "app=shop", "-o", "json").stdout
    )
    assert [(i["metadata"]["name"], i["data"]) for i in listed["items"]] == [
        ("settings", {"mode": "blue"})
    ]
    assert "settings" in run(*kubectl, "-n", "shop", "get", "cm").stdout

    manifest.write_text(MANIFEST.replace("blue", "green"))
    out = run(*kubectl, "apply", "-f", str(manifest)).stdout
    assert "configmap/settings configured" in out and "namespace/shop unchanged" in out
    dep = json.loads(run(*kubectl, "-n", "shop", "get", "deployment", "shop", "-o", "json").stdout)
    assert dep["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "MODE", "value": "green"}
    ]
    assert dep["metadata"]["generation"] == 2

    assert "deleted" in run(*kubectl, "delete", "-f", str(manifest)).stdout
    missing = run(*kubectl, "get", "namespace", "shop", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_cli_process_serves_until_sigterm(tmp_path: Path, run) -> None:
    kubeconfig = tmp_path / "cli-kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local_stack.kube_api_standin",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert (
            line["kubeconfig"] == str(kubeconfig)
            and line["url"] == f"https://127.0.0.1:{line['port']}"
        )
        run(KUBECTL, "--kubeconfig", str(kubeconfig), "create", "namespace", "from-cli")
        names = run(
            KUBECTL, "--kubeconfig", str(kubeconfig), "get", "ns", "-o", "name"
        ).stdout.split()
        assert "namespace/from-cli" in names
        req = urllib.request.Request(line["url"] + "/_standin/reset", b"{}", method="POST")
        trust = ssl.create_default_context(cadata=line["certificate_authority"])
        urllib.request.urlopen(req, timeout=10, context=trust).close()
        names = run(
            KUBECTL, "--kubeconfig", str(kubeconfig), "get", "ns", "-o", "name"
        ).stdout.split()
        assert "namespace/from-cli" not in names
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
