"""Fixtures shared by the whole suite. Every service the tests need is started here, by
pytest itself, on free loopback ports, and stopped by PID at the end of the session.

Tests are laid out by layer, and each layer is a marker set here from the path, so a new
test gets its marker by where it is put:
- `tests/unit/<package>/`: no service and no network (the time-skipping test server and
  workflow replays count as in-process); `make test-fast` runs these.
- `tests/integration/<package>/`: one layer against real parts: the Kubernetes API
  stand-in, MariaDB, moto, helm and kubectl, a Temporal dev server.
- `tests/e2e/`: the real `worker.py` and `starter.py` processes on the local stack.
- `tests/real_cluster/`: opt-in, against a real cluster (skipped unless configured).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.charts import MIRROR_VARIABLE
from adapters.clients import AwsClients, KubeClients
from declared_state.loader import load_environment
from declared_state.models import Environment
from local_stack.aws import DatabaseTarget, LocalAws
from local_stack.chart_repository import ChartRepository
from local_stack.frontend_pods import TemporalFrontendPods
from local_stack.mariadb import MariaDB, start_mariadb
from local_stack.registry import RegistryStandIn
from local_stack.temporal_servers import TemporalDevServer, target_server
from tests.helpers import MIRROR_CHARTS  # noqa: F401 - sets the mirror setting first

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("unit", "integration", "e2e", "real_cluster")


# The files that take longest (measured with --durations; docs/benchmarks.md §5), started
# first: with `--dist loadfile` a file runs whole in one process, and a long one handed out
# last keeps the run going after the other processes have finished. xdist keeps this order
# only with --no-loadscope-reorder (the Makefile's); by default it sorts files by their
# number of tests, which put these files of few tests at the end.
SLOWEST_FILES = (
    # Measured in the fresh-clone run of 2026-12-08 (sum of setup+call+teardown per file);
    # the ones that mostly wait (kills, heartbeat timeouts) alternate with the ones that
    # mostly compute (helm, pip), so the first minutes keep both cores busy.
    # The first three go to the three processes at once; the next three are each one's next
    # file (xdist keeps two files per process), so each process pairs waits with work.
    "e2e/test_faults.py",  # 273 s, waits
    "integration/activities/test_install_chart.py",  # 203 s, helm
    "integration/test_packaging.py",  # 87-109 s, pip
    "e2e/test_crash_recovery.py",  # 152 s, waits
    "e2e/test_upgrade_crash.py",  # 129 s, waits
    "integration/cli/test_cli_usage.py",  # 85 s, process starts
    "e2e/test_drift_check.py",  # 98 s
    "e2e/test_upgrade.py",  # 71 s
    "e2e/test_in_cluster_rbac.py",  # 70 s
    "e2e/test_secret_scan.py",  # 62 s
    "e2e/test_bad_input.py",  # 61 s
    "e2e/test_live_drift.py",  # 56 s
    "integration/cli/test_starter_cli.py",  # 53 s
)


def _run_order(item: pytest.Item) -> tuple[int, int]:
    """Slowest files first, then the layers from e2e down to unit; a file's tests keep their
    order (an e2e module's tests build on each other)."""
    relative = item.path.relative_to(PROJECT_ROOT / "tests")
    name = relative.as_posix()
    if name in SLOWEST_FILES:
        return (0, SLOWEST_FILES.index(name))
    layer = relative.parts[0]
    return (1, ("e2e", "integration", "unit").index(layer) if layer in LAYERS[:3] else 3)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.relative_to(PROJECT_ROOT / "tests").parts
        if parts[0] in LAYERS:
            item.add_marker(parts[0])
    items.sort(key=_run_order)  # stable: the order within a file stays


HELM_TOOLS = PROJECT_ROOT / ".tools" / "helm"
# tests/helpers points the machine's chart mirror setting at ../shared/charts when it exists.


@pytest.fixture(scope="session")
def chart_mirror() -> dict[str, str]:
    """The machine's chart mirror setting, for subprocess environments that drop TEMPORAL_*."""
    value = os.environ.get(MIRROR_VARIABLE)
    return {MIRROR_VARIABLE: value} if value else {}


@pytest.fixture(scope="session")
def helm_binaries() -> dict[str, str]:
    """The real helm v3 and v4 binaries that scripts/setup.sh extracts."""
    found = {v: HELM_TOOLS / v / "helm" for v in ("v3", "v4")}
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        pytest.fail(f"helm binaries missing ({', '.join(missing)}): run scripts/setup.sh")
    return {v: str(p) for v, p in found.items()}


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory) -> Iterator[MariaDB]:
    """TLS-only MariaDB with Temporal's schema_version at 1.14 / 1.6 (server 1.25)."""
    db = start_mariadb(tmp_path_factory.mktemp("mariadb"))
    try:
        yield db
    finally:
        db.stop()


@pytest.fixture(scope="session")
def local_aws(mariadb: MariaDB) -> Iterator[LocalAws]:
    """moto: RDS instance whose endpoint is `mariadb`, the password secret, the CA in S3."""
    aws = LocalAws(DatabaseTarget(mariadb.host, mariadb.port, mariadb.password, mariadb.ca_path))
    aws.start()
    saved = {k: os.environ.get(k) for k in aws.env}
    # boto3 clients built by the code under test find moto through these, as in production.
    os.environ.update(aws.env)
    try:
        yield aws
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aws.stop()


@pytest.fixture(scope="session")
def target_temporal(tmp_path_factory) -> Iterator[TemporalDevServer]:
    """A Temporal dev server for tests that need a frontend without an install (reached with
    `frontend.connect: direct`); the installed releases' frontends are `frontend_pods`."""
    server = target_server(tmp_path_factory.mktemp("target-temporal")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def frontend_pods(tmp_path_factory) -> Iterator[TemporalFrontendPods]:
    """The local stack's frontend pods: a Temporal dev server per Ready frontend pod of a
    release installed into `kube_standin`, reached through port-forward."""
    pods = TemporalFrontendPods(tmp_path_factory.mktemp("frontend-pods"))
    try:
        yield pods
    finally:
        pods.stop_all()


@pytest.fixture(scope="session")
def kube_standin(tmp_path_factory, frontend_pods, image_registry):
    """The Kubernetes API stand-in (controller mode on, the local stack's frontend pods) and a
    kubeconfig pointing at it."""
    from local_stack.kube_api_standin import KubeApiStandIn

    server = KubeApiStandIn.start(port=0)
    server.add_runtime(frontend_pods)
    # kubelet pulls from the registry stand-in: an image it lacks goes to ImagePullBackOff.
    server.use_registry(image_registry.has)
    server.kubeconfig_path = server.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    _SESSION_STANDIN.append((server, _namespaces(server)))
    try:
        yield server
    finally:
        _SESSION_STANDIN.clear()
        server.stop()


_SESSION_STANDIN: list[tuple[Any, set[str]]] = []  # (stand-in, namespaces it started with)


def _core(server: Any) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(str(server.kubeconfig_path)))


def _namespaces(server: Any) -> set[str]:
    return {ns.metadata.name for ns in _core(server).list_namespace().items}


@pytest.fixture(autouse=True, scope="module")
def _free_what_the_module_installed() -> Iterator[None]:
    """Delete the namespaces a test module created in the session's stand-in when the module
    ends. Every installed release runs a Temporal dev server behind its frontend pods (the
    local stack's frontend runtime): kept to the end of the session they piled up to ~60
    servers and ~10 GB. A namespace's deletion takes its pods, and their servers stop.
    Torn down after the module's own fixtures (its worker stops first); a module that needs a
    release sets it up itself, as it must to run alone."""
    before = _namespaces(_SESSION_STANDIN[0][0]) if _SESSION_STANDIN else None
    yield
    if not _SESSION_STANDIN:
        return
    server, at_start = _SESSION_STANDIN[0]
    core = _core(server)
    for name in sorted(_namespaces(server) - (before if before is not None else at_start)):
        with contextlib.suppress(Exception):
            core.delete_namespace(name)


@pytest.fixture(scope="session")
def chart_repository(tmp_path_factory, helm_binaries) -> Iterator[ChartRepository]:
    """The local stack's Helm chart repository: the chart cache (every chart of the mirror
    folder), packaged and indexed."""
    repository = ChartRepository.start(
        tmp_path_factory.mktemp("chart-repository"), helm_binaries["v4"]
    )
    try:
        yield repository
    finally:
        repository.stop()


@pytest.fixture(scope="session")
def image_registry() -> Iterator[RegistryStandIn]:
    """The local stack's image registry stand-in: the images the shipped charts pin."""
    registry = RegistryStandIn.start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def stack_variables(mariadb, local_aws, chart_repository, image_registry) -> dict[str, str]:
    """What environments/local.yaml interpolates, as `python -m local_stack up` exports it."""
    return {
        "LOCAL_STACK_DB_HOST": mariadb.host,
        "LOCAL_STACK_DB_PORT": str(mariadb.port),
        "LOCAL_STACK_KUBE_CONTEXT": "standin",
        "LOCAL_STACK_CHART_REPOSITORY": chart_repository.url,
        "LOCAL_STACK_IMAGE_REGISTRY": image_registry.url,
    }


@pytest.fixture(scope="session")
def local_env(stack_variables) -> Environment:
    """environments/local.yaml pointed at this session's stack."""
    return load_environment("local", variables=stack_variables)


@pytest.fixture(scope="session")
def aws_clients(local_aws) -> AwsClients:
    return AwsClients()


@pytest.fixture(scope="session")
def kube_clients(kube_standin) -> KubeClients:
    return KubeClients(kubeconfig=str(kube_standin.kubeconfig_path))
