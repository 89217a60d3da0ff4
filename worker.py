"""The temporal-bootstrap worker: runs the bootstrap, drift-check and upgrade workflows and their activities.

    python worker.py                 # embedded local dev server unless a Temporal address is set
    python worker.py --local-stack   # use the addresses of `python -m local_stack up`

Settings: the standard Temporal client settings (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE) and
TEMPORAL_TASK_QUEUE for the bootstrap server; KUBECONFIG (in a pod without it: the pod's
ServiceAccount, and TEMPORAL_BOOTSTRAP_IN_CLUSTER_CONTEXT, the kube context name environment
files use for that cluster) and HELM_BIN for the clusters; the usual AWS_* variables (RDS,
Secrets Manager, S3); TEMPORAL_BOOTSTRAP_STATE_DIR for where the embedded server and prepared
charts live (default ./.state); TEMPORAL_BOOTSTRAP_IN_CLUSTER (true/false; default: true when
the worker uses its pod's ServiceAccount) for how the new cluster's frontend is reached when
an environment does not say (frontend.connect: direct inside the cluster, port-forward
through the Kubernetes API outside); TEMPORAL_BOOTSTRAP_METRICS_PORT (or --metrics-port):
serve Prometheus metrics at http://[HOST:]PORT/metrics (off when unset; deploy/ sets 9464;
docs/observability.md); the variables the environments' `notifications.webhooks` name (their
URLs); TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS: a folder of environment files the worker
trusts; when set, a run whose declaration differs from the worker's copy of its environment
is refused at its first step, before anything is written (activities/trusted_declarations.py,
docs/security.md); TEMPORAL_BOOTSTRAP_HEALTH_PORT
([HOST:]PORT): serve /livez and /readyz for the kubelet's probes (operations/health.py).
deploy/README.md runs it in a cluster.

Exit codes: 0 stopped on SIGTERM/SIGINT, 1 the bootstrap server cannot be reached (or no
local stack runs for --local-stack), 3 invalid command line (the starter's "invalid input"),
Kubernetes credentials that cannot be loaded or a trusted environments folder that cannot
be read (checked at start, before "worker ready").
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import boto3
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.check_database import DatabasePreflight
from activities.check_images import CheckImages
from activities.check_live_objects import LiveObjectChecker
from activities.check_server_version import CheckServerVersion
from activities.check_temporal import TemporalCheck
from activities.ensure_ca_bundle import CaBundlePublisher
from activities.ensure_db_secret import DbSecretPublisher
from activities.install_chart import ChartInstaller
from activities.notify import notify
from activities.plan_upgrade import plan_upgrade
from activities.read_live_versions import ReadLiveVersions
from activities.register_namespaces import RegisterNamespaces
from activities.snapshot_database import SnapshotDatabase
from activities.soak import Soak
from activities.trusted_declarations import (
    TrustedDeclarationsInterceptor,
    TrustedEnvironments,
    TrustedFolderUnreadable,
)
from activities.update_schema import UpdateSchema
from activities.wait_frontend_healthy import WaitFrontendHealthy
from adapters.clients import CREDENTIAL_ERRORS, DEFAULT_KUBECONFIG, AwsClients, KubeClients
from adapters.temporal_target import TargetTemporalClients
from contracts.step_spec import activity_name
from operations.embedded import EmbeddedServerError
from operations.health import HealthEndpoint, HealthSettingError, start_from_environment
from operations.settings import (
    ClientSettings,
    SettingsError,
    apply_local_stack_env,
    connect_failure,
    resolve,
)
from workflows.bootstrap import BootstrapWorkflow
from workflows.drift_check import DriftCheckWorkflow
from workflows.upgrade import UpgradeWorkflow

log = logging.getLogger("temporal-bootstrap.worker")


WORKFLOWS = (BootstrapWorkflow, DriftCheckWorkflow, UpgradeWorkflow)


def build_activities(kube: KubeClients, helm_binary: str | None) -> list[Callable[..., Any]]:
    """Every activity implementation, bound to clients built once here (`kube`: the worker's
    Kubernetes credentials, `KubeClients.from_environment()`). The worker registers those the
    workflows' step specs name (`registered_activities`)."""
    aws = AwsClients()
    # The new frontend: port-forward through the Kubernetes API outside a cluster, the
    # Service's DNS name inside one (TEMPORAL_BOOTSTRAP_IN_CLUSTER overrides the guess).
    target = TargetTemporalClients(kube)
    # Reads both databases' schema_version exactly as the preflight does.
    preflight = DatabasePreflight(aws, kube)
    installer = ChartInstaller(helm_binary, kube=kube)
    return [
        preflight.check_database,
        CheckImages(installer).check_images,
        CaBundlePublisher(aws, kube).ensure_ca_bundle,
        DbSecretPublisher(aws, kube).ensure_db_secret,
        installer.install_chart,
        WaitFrontendHealthy(target).wait_frontend_healthy,
        RegisterNamespaces(target).register_namespaces,
        # the upgrade's own steps
        ReadLiveVersions(kube, preflight).read_live_versions,
        plan_upgrade,  # pure: the plan from this release's tables, recorded in the history
        SnapshotDatabase(aws).snapshot_database,
        UpdateSchema(aws, kube, preflight).update_schema,
        CheckServerVersion(target).check_server_version,
        Soak(target).soak,
        # the drift check's read-only comparisons of what runs
        LiveObjectChecker(installer, kube).check_live_objects,
        TemporalCheck(target, preflight, installer).check_temporal,
        # webhooks (the URL is read here, in the worker's environment)
        notify,
    ]


def registered_activities(
    workflows: Sequence[Any], implementations: Sequence[Callable[..., Any]]
) -> list[Callable[..., Any]]:
    """The implementations of the activities `workflows` call (each workflow class's
    `activity_references()`: its step specs' activities), by activity name, in the order
    the workflows name them. Raises LookupError naming an activity without one."""
    by_name = {activity_name(fn): fn for fn in implementations}
    wanted = dict.fromkeys(
        activity_name(reference) for wf in workflows for reference in wf.activity_references()
    )
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise LookupError(f"no implementation for the activities {missing} the workflows call")
    return [by_name[name] for name in wanted]


EXIT_USAGE = 3  # the starter's "invalid input"; argparse's own 2 means "waiting" there


def check_credentials(kube: KubeClients) -> str | None:
    """Load the Kubernetes credentials and look for AWS ones once, at start (#20.3): why the
    worker must not start (credentials it cannot load: every step would fail), or None after
    logging which kube contexts it serves and what it lacks. A worker that said "ready" with
    a kubeconfig it cannot load used to take every run's steps and fail them one by one."""
    explicit = kube.kubeconfig is not None or kube.in_cluster is not None
    try:
        contexts, current = kube.contexts()
    except CREDENTIAL_ERRORS as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        if explicit or Path(DEFAULT_KUBECONFIG).expanduser().exists():
            return (
                f"Kubernetes credentials from {kube.source} cannot be loaded ({why}); fix the "
                "file (or KUBECONFIG) and start the worker again"
            )
        log.warning(
            "no Kubernetes credentials (no KUBECONFIG, no %s, not in a pod): every "
            "environment's Kubernetes steps will fail until the worker has some",
            DEFAULT_KUBECONFIG,
        )
        contexts, current = [], None
    else:
        log.info(
            "Kubernetes: %s serves kube context(s) %s%s; an environment naming another "
            "context fails at once (ConfigurationMismatch)",
            kube.source,
            ", ".join(contexts) or "(none named: environments without kubernetes.context)",
            f" (current {current})" if current else "",
        )
    if boto3.Session().get_credentials() is None:
        log.warning(
            "no AWS credentials found (AWS_* variables, shared config or an instance/pod "
            "role): the steps that read RDS, Secrets Manager or S3 will fail for every "
            "environment until the worker has some"
        )
    return None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


METRICS_PORT_VARIABLE = "TEMPORAL_BOOTSTRAP_METRICS_PORT"


def metrics_address(text: str) -> str:
    """`PORT` (all interfaces, as a pod needs) or `HOST:PORT` -> the bind address."""
    host, _, port = text.strip().rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected PORT or HOST:PORT with a port from 1 to 65535, got {text!r}"
        )
    return f"{host or '0.0.0.0'}:{int(port)}"  # noqa: S104 - scraped from outside the pod


def metrics_runtime(bind_address: str | None) -> Runtime | None:
    """The SDK runtime with a Prometheus endpoint at `bind_address` (the SDK's own metrics
    and the gauges the workflows set, workflows/notifying.py); None: the default runtime,
    no endpoint. Raises ValueError (the SDK's) when the address cannot be bound."""
    if bind_address is None:
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(
        prog="worker.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--local-stack",
        action="store_true",
        help="take KUBECONFIG, AWS_* and TEMPORAL_ADDRESS from a running `python -m local_stack up`",
    )
    parser.add_argument(
        "--max-concurrent-activities",
        type=_at_least_one,
        default=8,
        metavar="N",
        help="activities run at once (at least 1; default 8)",
    )
    parser.add_argument(
        "--metrics-port",
        type=metrics_address,
        metavar="[HOST:]PORT",
        help=f"serve Prometheus metrics at /metrics there (default: ${METRICS_PORT_VARIABLE}; "
        "unset: no metrics endpoint)",
    )
    args = parser.parse_args(argv)
    if args.metrics_port is None and os.environ.get(METRICS_PORT_VARIABLE):
        try:
            args.metrics_port = metrics_address(os.environ[METRICS_PORT_VARIABLE])
        except argparse.ArgumentTypeError as exc:
            parser.error(f"{METRICS_PORT_VARIABLE}: {exc}")
    return args


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # botocore logs whole responses (GetSecretValue included) at DEBUG: never below INFO.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    if args.local_stack and not apply_local_stack_env():
        log.error("no running local stack: start it with `python -m local_stack up`")
        return 1
    kube = KubeClients.from_environment()
    refused = check_credentials(kube)
    if refused:
        log.error("%s", refused)
        return EXIT_USAGE
    try:
        trusted = TrustedEnvironments.from_environment()
    except TrustedFolderUnreadable as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    if trusted is None:
        log.warning(
            "no trusted environments (TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS unset): every "
            "declaration a run carries is applied; docs/security.md says who can start one"
        )
    else:
        log.info("%s", trusted.describe())
    try:
        health = start_from_environment(os.environ)
    except HealthSettingError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except OSError as exc:
        log.error("the health endpoint cannot listen: %s", exc.strerror or exc)
        return 1
    if health is not None:
        log.info("health endpoint on %s (/livez, /readyz)", health.address)
    try:
        return await _serve(args, kube, trusted, health)
    finally:
        if health is not None:
            health.stop()


async def _serve(
    args: argparse.Namespace,
    kube: KubeClients,
    trusted: TrustedEnvironments | None,
    health: HealthEndpoint | None,
) -> int:
    """Connect to the bootstrap server and run the worker until SIGTERM/SIGINT."""
    try:
        loaded = ClientSettings.load()
        if kube.in_cluster is not None and not loaded.address:
            # An embedded server in the worker's own container would keep every run's history
            # on a volume that goes with the pod: in a cluster the server is named explicitly.
            log.error(
                "running in a pod without TEMPORAL_ADDRESS: point it at an existing Temporal, "
                "or deploy the bootstrap server of deploy/components/embedded-server "
                "(deploy/README.md)"
            )
            return 1
        settings = resolve(loaded, start_embedded=True)
    except (SettingsError, EmbeddedServerError) as exc:
        log.error("%s", exc)
        return 1
    assert settings is not None  # started when missing
    try:
        runtime = metrics_runtime(args.metrics_port)
    except (RuntimeError, ValueError) as exc:  # the SDK: ValueError "Address already in use"
        log.error("cannot serve metrics on %s: %s", args.metrics_port, exc)
        return 1
    if runtime is not None:
        log.info("Prometheus metrics on http://%s/metrics", args.metrics_port)
    try:
        client = await settings.connect(runtime)
    except (SettingsError, RuntimeError) as exc:
        log.error("%s", connect_failure(settings.address, exc))
        return 1
    if health is not None:

        async def check_server() -> None:
            if not await client.service_client.check_health():
                raise RuntimeError("its health check answers NOT_SERVING")

        health.watch(check_server)
    if kube.in_cluster is not None:
        log.info(
            "Kubernetes: this pod's ServiceAccount at %s (kube context %s)",
            kube.in_cluster.server,
            kube.in_cluster.context or "unset",
        )
    activities = registered_activities(
        WORKFLOWS, build_activities(kube, os.environ.get("HELM_BIN"))
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with concurrent.futures.ThreadPoolExecutor(args.max_concurrent_activities) as pool:
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=list(WORKFLOWS),
            activities=activities,
            activity_executor=pool,
            max_concurrent_activities=args.max_concurrent_activities,
            interceptors=[TrustedDeclarationsInterceptor(trusted)] if trusted else [],
            # Long activities (helm --wait) get this long to finish after SIGTERM.
            graceful_shutdown_timeout=timedelta(seconds=10),
        )
        async with worker:
            if health is not None:
                health.state.polling = True
            log.info(
                "worker ready: %s namespace %s task queue %s%s",
                settings.address,
                settings.namespace,
                settings.task_queue,
                f"; Web UI {settings.ui_url}" if settings.ui_url else "",
            )
            print(
                f"worker ready on {settings.address}, task queue {settings.task_queue}", flush=True
            )
            if settings.ui_url:
                print(f"Temporal Web UI: {settings.ui_url}", flush=True)
            await stop.wait()
            if health is not None:
                health.state.polling = False
            log.info("shutting down: finishing running activities")
    return 0


def cli() -> NoReturn:
    """The console script (`temporal-bootstrap-worker`) and `python worker.py`."""
    exit_code = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization, where the Temporal SDK's runtime can abort
    # (PyGILState_Release, a known open SDK issue): exit with the worker's real status.
    os._exit(exit_code)


if __name__ == "__main__":
    cli()
