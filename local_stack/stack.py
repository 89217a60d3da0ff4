"""The whole local stack: Kubernetes API stand-in, TLS MariaDB, moto, the bootstrap Temporal
server, a Helm chart repository serving the shared charts, and a Temporal dev server for
each frontend pod the stand-in runs (frontend_pods.py): the new cluster's frontend exists
only once helm has installed the release.

Two modes share one code path:
- in-process (tests): moto and the Kubernetes stand-in run inside this Python process so
  tests can reach into their state; servers are stopped when the stack is stopped;
- detached (`python -m local_stack up`): every part is a background process recorded by
  PID in the state file, so `python -m local_stack down` can stop it later.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from declared_state.paths import state_dir
from local_stack.aws import DatabaseTarget, LocalAws, aws_env
from local_stack.frontend_pods import TemporalFrontendPods
from local_stack.mariadb import DEFAULT_SCHEMA_VERSIONS, MariaDB, find_binaries, start_mariadb
from local_stack.processes import (
    LOOPBACK,
    ManagedProcess,
    free_ports,
    pid_alive,
    stop_pid,
    tcp_open,
)
from local_stack.temporal_servers import TemporalDevServer, bootstrap_server
from local_stack.tls import write_tls_files

STATE_VERSION = 1
STATE_FILE = "stack.json"
REPO_ROOT = Path(__file__).resolve().parents[1]


def default_state_dir() -> Path:
    """Where the CLI keeps its stack: `local-stack/` in the one state folder
    (TEMPORAL_BOOTSTRAP_STATE_DIR, default ./.state), where `--local-stack` looks for it."""
    return state_dir() / "local-stack"


def state_path(state_dir: Path | None = None) -> Path:
    return (state_dir or default_state_dir()) / STATE_FILE


def load_state(state_dir: Path | None = None) -> dict[str, Any] | None:
    path = state_path(state_dir)
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # It holds the throwaway DB password: owner-only.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    tmp.replace(path)


def processes_alive(state: Mapping[str, Any]) -> dict[str, bool]:
    """Per recorded process: is that very process (PID + start time) still running?"""
    return {
        name: pid_alive(int(p["pid"]), p.get("start_time"))
        for name, p in state.get("processes", {}).items()
    }


def stop_recorded(state: Mapping[str, Any], timeout: float = 10.0) -> list[str]:
    """Stop every process in a state file by PID (reverse start order); names stopped."""
    stopped = []
    for name, p in reversed(list(state.get("processes", {}).items())):
        if stop_pid(int(p["pid"]), p.get("start_time"), timeout=timeout):
            stopped.append(name)
    return stopped


def _json_line(log: Path) -> dict[str, Any] | None:
    """First JSON object line a child printed to its log (its 'I am ready' message)."""
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    return dict(json.loads(line))
    return None


class StackAlreadyRunning(RuntimeError):
    pass


class LocalStack:
    """Start with `start()` (or `with LocalStack(dir) as stack:`); stop with `stop()`."""

    def __init__(
        self,
        state_dir: Path,
        *,
        detached: bool = False,
        with_kubernetes: bool = True,
        schema_versions: Mapping[str, str] = DEFAULT_SCHEMA_VERSIONS,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.detached = detached
        self.with_kubernetes = with_kubernetes
        self.schema_versions = dict(schema_versions)
        self.log_dir = self.state_dir / "logs"
        self.kubeconfig_path = self.state_dir / "kubeconfig.yaml"
        self.kube: Any = None  # the in-process stand-in object
        self.frontends: TemporalFrontendPods | None = None  # its frontend pods (in-process)
        self.kube_url: str | None = None
        self.charts: Any = None  # the in-process chart repository
        self.charts_url: str | None = None
        self.registry: Any = None  # the in-process registry stand-in
        self.registry_url: str | None = None
        self.mariadb: MariaDB | None = None
        self.aws: LocalAws | None = None  # in-process only
        self.aws_endpoint_url: str | None = None
        self.bootstrap: TemporalDevServer | None = None
        self.startup_seconds: float | None = None
        self._procs: dict[str, ManagedProcess] = {}

    # --- start ---------------------------------------------------------------------
    def start(self) -> LocalStack:
        old = load_state(self.state_dir)
        if old is not None:
            if any(processes_alive(old).values()):
                raise StackAlreadyRunning(f"a local stack is running from {self.state_dir}")
            state_path(self.state_dir).unlink()
        find_binaries()  # fail early with the install hint, before starting anything
        # The charts too (no network and no mirror: one line, nothing started).
        from adapters.helm_cli import find_helm
        from local_stack.chart_repository import fill_chart_cache

        fill_chart_cache(find_helm())
        began = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tls = write_tls_files(self.state_dir / "tls")
        # Chosen up front so moto can be seeded while MariaDB is still starting.
        (db_port,) = free_ports(1)
        db_password = secrets.token_urlsafe(18)
        target = DatabaseTarget(tls.server_name, db_port, db_password, tls.ca_path)
        temporal_dir = self.state_dir / "temporal"
        self.bootstrap = bootstrap_server(temporal_dir, detached=self.detached)
        self.bootstrap.log_path = self.log_dir / "temporal-bootstrap.log"

        def mariadb() -> None:
            self.mariadb = start_mariadb(
                self.state_dir / "mariadb",
                tls=tls,
                port=db_port,
                password=db_password,
                schema_versions=self.schema_versions,
                detached=self.detached,
            )
            assert self.mariadb.process is not None
            self._procs["mariadb"] = self.mariadb.process

        def temporal(server: TemporalDevServer) -> Callable[[], None]:
            def run() -> None:
                server.start()
                assert server.process is not None
                self._procs[f"temporal-{server.name}"] = server.process

            return run

        # The registry first: the Kubernetes stand-in's kubelet pulls from it.
        self._start_registry()
        jobs: list[Callable[[], None]] = [
            mariadb,
            self._start_charts,
            lambda: self._start_aws(target),
            temporal(self.bootstrap),
        ]
        if self.with_kubernetes:
            jobs.insert(0, self._start_kube)
        try:
            with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
                futures = [pool.submit(job) for job in jobs]
                errors = [f.exception() for f in futures if f.exception() is not None]
            if errors:
                raise errors[0]  # type: ignore[misc]
            self.startup_seconds = round(time.monotonic() - began, 2)
            _write_json(state_path(self.state_dir), self.state())
        except BaseException:
            self.stop()
            raise
        return self

    def _start_detached(
        self,
        name: str,
        module_args: list[str],
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start `python -m <module_args>` as a recorded background process that prints one
        JSON line when it is ready (and, with `port`, listens there); returns that line."""
        log = self.log_dir / f"{name}.log"
        log.unlink(missing_ok=True)
        proc = ManagedProcess(
            name,
            [sys.executable, "-m", *module_args],
            ready=lambda _p: (
                _json_line(log) is not None and (port is None or tcp_open(LOOPBACK, port))
            ),
            log_path=log,
            env=dict(env) if env is not None else None,
            cwd=REPO_ROOT,
            detached=True,
        ).start()
        self._procs[name] = proc
        return _json_line(log) or {}

    def _start_kube(self) -> None:
        if not self.detached:
            from local_stack.kube_api_standin import KubeApiStandIn

            self.kube = KubeApiStandIn.start(port=0)
            self.frontends = TemporalFrontendPods(self.log_dir)
            self.kube.add_runtime(self.frontends)
            if self.registry is not None:
                self.kube.use_registry(self.registry.has)
            self.kube_url = str(self.kube.url)
            self.kube.write_kubeconfig(self.kubeconfig_path)
            return
        (port,) = free_ports(1)
        info = self._start_detached(
            "kube-api-standin",
            [
                "local_stack.kube_api_standin",
                "--port",
                str(port),
                "--kubeconfig",
                str(self.kubeconfig_path),
                "--temporal-frontend-logs",
                str(self.log_dir),
                *(["--image-registry", self.registry_url] if self.registry_url else []),
            ],
            port=port,
        )
        self.kube_url = str(info.get("url") or f"https://{LOOPBACK}:{port}")

    def _start_charts(self) -> None:
        directory = self.state_dir / "chart-repository"
        if not self.detached:
            from adapters.helm_cli import find_helm
            from local_stack.chart_repository import ChartRepository

            self.charts = ChartRepository.start(directory, find_helm())
            self.charts_url = self.charts.url
            return
        info = self._start_detached(
            "chart-repository", ["local_stack.chart_repository", "--directory", str(directory)]
        )
        self.charts_url = str(info["url"])

    def _start_registry(self) -> None:
        if not self.detached:
            from local_stack.registry import RegistryStandIn

            self.registry = RegistryStandIn.start()
            self.registry_url = self.registry.url
            return
        info = self._start_detached("image-registry", ["local_stack.registry"])
        self.registry_url = str(info["url"])

    def _start_aws(self, db: DatabaseTarget) -> None:
        if not self.detached:
            self.aws = LocalAws(db).start()
            self.aws_endpoint_url = self.aws.endpoint_url
            return
        info = self._start_detached(
            "moto",
            [
                "local_stack.aws",
                "serve",
                "--db-host",
                db.host,
                "--db-port",
                str(db.port),
                "--ca-bundle",
                str(db.ca_bundle),
            ],
            # The password goes through the environment so it does not show up in `ps`.
            env={**os.environ, "LOCAL_STACK_DB_PASSWORD": db.password},
        )
        self.aws_endpoint_url = str(info["endpoint_url"])

    # --- stop ----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop everything this object started, by PID; safe after a failed start."""
        parts: list[Any] = [
            self.bootstrap,
            self.aws,
            self.mariadb,
            self.kube,
            self.charts,
            self.registry,
        ]
        for part in parts:
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        for proc in self._procs.values():
            proc.stop()
        state_path(self.state_dir).unlink(missing_ok=True)
        # The data dir is throwaway and ~100 MB; logs and the bootstrap SQLite stay.
        shutil.rmtree(self.state_dir / "mariadb" / "data", ignore_errors=True)

    def __enter__(self) -> LocalStack:
        return self.start() if self.startup_seconds is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what others need ----------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment for tools/workflows that should use this stack."""
        assert self.aws_endpoint_url and self.bootstrap
        env = aws_env(self.aws_endpoint_url)
        assert self.mariadb
        env["TEMPORAL_ADDRESS"] = self.bootstrap.address
        env["LOCAL_STACK_STATE"] = str(state_path(self.state_dir))
        # What environments/local.yaml interpolates.
        env["LOCAL_STACK_DB_HOST"] = self.mariadb.host
        env["LOCAL_STACK_DB_PORT"] = str(self.mariadb.port)
        assert self.charts_url
        env["LOCAL_STACK_CHART_REPOSITORY"] = self.charts_url
        assert self.registry_url
        env["LOCAL_STACK_IMAGE_REGISTRY"] = self.registry_url
        if self.with_kubernetes:
            env["KUBECONFIG"] = str(self.kubeconfig_path)
            env["LOCAL_STACK_KUBE_CONTEXT"] = _current_context(self.kubeconfig_path)
        return env

    def state(self) -> dict[str, Any]:
        assert self.mariadb and self.bootstrap
        return {
            "version": STATE_VERSION,
            "mode": "detached" if self.detached else "in-process",
            "owner_pid": os.getpid(),
            "state_dir": str(self.state_dir),
            "startup_seconds": self.startup_seconds,
            "processes": {name: p.info() for name, p in self._procs.items()},
            "chart_repository": {"url": self.charts_url},
            "image_registry": {"url": self.registry_url},
            "kubernetes": {
                "url": self.kube_url,
                "kubeconfig": str(self.kubeconfig_path) if self.with_kubernetes else None,
            },
            "mariadb": self.mariadb.state(),
            "aws": {
                **(self.aws.state() if self.aws else {}),
                **_aws_static_state(),
                "endpoint_url": self.aws_endpoint_url,
                "env": aws_env(str(self.aws_endpoint_url)),
            },
            "temporal": {"bootstrap": self.bootstrap.state()},
            "env": self.env,
        }


def _current_context(kubeconfig: Path) -> str:
    import yaml

    with contextlib.suppress(OSError, yaml.YAMLError, AttributeError):
        context = yaml.safe_load(kubeconfig.read_text()).get("current-context")
        if context:
            return str(context)
    return "standin"


def _aws_static_state() -> dict[str, str]:
    from local_stack import aws

    return {
        "region": aws.REGION,
        "rds_instance_identifier": aws.RDS_INSTANCE_ID,
        "secret_id": aws.SECRET_ID,
        "ca_bucket": aws.CA_BUCKET,
        "ca_key": aws.CA_KEY,
    }


@contextlib.contextmanager
def local_stack(state_dir: Path | None = None, **kwargs: Any) -> Iterator[LocalStack]:
    """Fixture-style in-process stack; by default in its own `.state/local-stack/run-<pid>`
    so it never collides with a stack started by the CLI."""
    throwaway = state_dir is None
    state_dir = state_dir or default_state_dir() / f"run-{os.getpid()}"
    stack = LocalStack(state_dir, **kwargs).start()
    print(f"local stack up in {stack.startup_seconds:.2f}s", file=sys.stderr)
    try:
        yield stack
    finally:
        stack.stop()
        if throwaway:
            shutil.rmtree(state_dir, ignore_errors=True)
