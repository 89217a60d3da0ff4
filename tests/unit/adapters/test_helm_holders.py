"""Which helm processes on this host hold a release (adapters/helm_cli.helms_holding), with two
stacks on one host: two kubeconfigs, each with a context called `local` and a release
`temporal` in `my-app-local`, pointing at two API servers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from adapters.helm_cli import HelmCli

NS, RELEASE = "holders-test-ns", "temporal"  # no other test works on it


def _kubeconfig(path: Path, server: str) -> str:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": {"server": server}}],
                "users": [{"name": "local", "user": {"token": "t"}}],
                "contexts": [{"name": "local", "context": {"cluster": "local", "user": "local"}}],
                "current-context": "local",
            }
        )
    )
    return str(path)


@pytest.fixture
def fake_helm(tmp_path: Path) -> str:
    """A process whose /proc cmdline starts with a `helm` (a Python under that name that
    sleeps): what helms_holding sees of a helm upgrade in its wait."""
    link = tmp_path / "bin" / "helm"
    link.parent.mkdir()
    link.symlink_to(sys.executable)
    return str(link)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


SLEEP = ["-c", "import time; time.sleep(60)", "upgrade", "--install", RELEASE, "-n", NS]


def test_two_stacks_do_not_take_each_others_helm(tmp_path: Path, fake_helm: str, started) -> None:
    a = _kubeconfig(tmp_path / "a.yaml", "http://127.0.0.1:40001")
    b = _kubeconfig(tmp_path / "b.yaml", "http://127.0.0.1:40002")
    helm_a = HelmCli(fake_helm, a, "local")
    helm_b = HelmCli(fake_helm, b, "local")
    ours = helm_a.start(SLEEP, holds=(NS, RELEASE), owner="wf/run/1")
    started.append(ours.proc)

    assert [(h.pid, h.owner) for h in helm_a.holders(NS, RELEASE)] == [(ours.proc.pid, "wf/run/1")]
    assert helm_b.holders(NS, RELEASE) == []
    # Another kubeconfig file naming the same API server is the same cluster.
    a_copy = _kubeconfig(tmp_path / "a-copy.yaml", "http://127.0.0.1:40001")
    assert [h.pid for h in HelmCli(fake_helm, a_copy, "local").holders(NS, RELEASE)] == [
        ours.proc.pid
    ]


def test_a_helm_by_hand_counts_for_the_cluster_its_kubeconfig_names(
    tmp_path: Path, fake_helm: str, started
) -> None:
    a = _kubeconfig(tmp_path / "a.yaml", "http://127.0.0.1:40001")
    b = _kubeconfig(tmp_path / "b.yaml", "http://127.0.0.1:40002")
    env = {k: v for k, v in os.environ.items() if k != "TEMPORAL_BOOTSTRAP_HELM_RELEASE"}

    def by_hand(*flags: str) -> int:
        proc = subprocess.Popen([fake_helm, *SLEEP, *flags], env=env, cwd=tmp_path)
        started.append(proc)
        return proc.pid

    on_a = by_hand("--kubeconfig", a)
    on_a_relative = by_hand("--kubeconfig", "a.yaml")  # relative to where that helm runs
    unnamed = by_hand()  # any kubeconfig: it counts
    unreadable = by_hand("--kubeconfig", "/nonexistent/kubeconfig")  # cannot tell: it counts

    holders_a = HelmCli(fake_helm, a, "local").holders(NS, RELEASE)
    holders_b = HelmCli(fake_helm, b, "local").holders(NS, RELEASE)
    assert sorted(h.pid for h in holders_a) == sorted([on_a, on_a_relative, unnamed, unreadable])
    assert sorted(h.pid for h in holders_b) == sorted([unnamed, unreadable])
    assert all(h.owner is None for h in holders_a + holders_b)
