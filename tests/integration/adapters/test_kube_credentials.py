"""Kubernetes credentials that cannot be loaded (#20.3): one non-retryable
ConfigurationMismatch on every path that loads them (an API client, helm in install_chart,
the port-forward of register_namespaces and check_temporal), and a worker that refuses to
start with them instead of printing "worker ready" and failing every step for minutes.

Real parts: the kubernetes client's own loader, the real helm (v4), the real port-forward
code, `python worker.py` as a process. Nothing here needs a cluster: the credentials fail
before any request.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.install_chart import ChartInstaller
from activities.register_namespaces import RegisterNamespaces
from adapters.clients import KubeClients
from adapters.errors import ErrorType
from adapters.temporal_target import TargetTemporalClients
from contracts.install_chart import InstallChartInput
from contracts.register_namespaces import RegisterNamespacesInput
from declared_state.models import Environment
from local_stack.processes import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[3]

# "Invalid kube-config file" (the kubernetes client's ConfigException), a file that is not
# YAML at all (the client lets yaml's error through), a context the file does not have.
BROKEN = {
    "invalid": "apiVersion: v1\nkind: Config\n",
    "not-yaml": "clusters: [unterminated\n",
}


@pytest.fixture(params=sorted(BROKEN))
def broken_kubeconfig(request, tmp_path) -> str:
    path = tmp_path / f"{request.param}.kubeconfig"
    path.write_text(BROKEN[request.param])
    return str(path)


def assert_configuration_error(error: BaseException, kubeconfig: str) -> None:
    assert isinstance(error, ApplicationError), repr(error)
    assert error.type == ErrorType.CONFIGURATION_MISMATCH
    assert error.non_retryable
    assert kubeconfig in error.message and "kube context standin" in error.message


def test_an_api_client_is_a_configuration_error(broken_kubeconfig):
    with pytest.raises(ApplicationError) as caught:
        KubeClients(broken_kubeconfig).core_v1("standin")
    assert_configuration_error(caught.value, broken_kubeconfig)


def test_helm_in_install_chart_is_a_configuration_error(
    broken_kubeconfig, helm_binaries, local_env: Environment
):
    installer = ChartInstaller(helm_binaries["v4"], broken_kubeconfig)
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(installer.install_chart, InstallChartInput(environment=local_env))
    assert_configuration_error(caught.value, broken_kubeconfig)


async def test_the_port_forward_of_register_namespaces_is_a_configuration_error(
    broken_kubeconfig, local_env: Environment
):
    clients = TargetTemporalClients(KubeClients(broken_kubeconfig), in_cluster=False)
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(
            RegisterNamespaces(clients).register_namespaces,
            RegisterNamespacesInput(environment=local_env, dry_run=True),
        )
    assert_configuration_error(caught.value, broken_kubeconfig)


def test_a_context_the_kubeconfig_lacks_is_a_configuration_error(kube_standin):
    kubeconfig = str(kube_standin.kubeconfig_path)
    with pytest.raises(ApplicationError) as caught:
        KubeClients(kubeconfig).core_v1("no-such-context")
    assert caught.value.type == ErrorType.CONFIGURATION_MISMATCH
    assert caught.value.non_retryable and "no-such-context" in caught.value.message


def test_the_worker_refuses_to_start_with_credentials_it_cannot_load(broken_kubeconfig, tmp_path):
    env = {
        **os.environ,
        "KUBECONFIG": broken_kubeconfig,
        "TEMPORAL_BOOTSTRAP_STATE_DIR": str(tmp_path / "state"),
        # No embedded server: a worker that does not refuse fails on the address instead.
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "worker.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "worker ready" not in proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"Kubernetes credentials from kubeconfig {broken_kubeconfig} cannot be loaded" in (
        proc.stderr
    ), proc.stderr
