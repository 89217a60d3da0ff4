"""Temporal dev servers: the bootstrap server (runs our workflows, Web UI, optional SQLite
so it survives a restart) and the target server (stands in for the installed cluster).

The command line and the health wait are the product's embedded server's
(operations/embedded.py), so the stack runs exactly what the product would."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stack.processes import (
    LOOPBACK,
    ManagedProcess,
    ProcessStartError,
    free_ports,
    log_tail,
    tcp_open,
)
from operations.embedded import dev_server_argv, temporal_cli, wait_serving

__all__ = ["TemporalDevServer", "dev_server", "temporal_cli", "wait_serving"]


_PORT_ATTEMPTS = 3
_PORT_TAKEN = "address already in use"


@dataclass
class TemporalDevServer:
    name: str
    port: int
    http_port: int
    metrics_port: int
    ui_port: int | None  # None: headless
    db_filename: Path | None
    log_path: Path | None
    namespaces: Sequence[str] = ()
    detached: bool = False
    binary: Path | None = None  # another `temporal` CLI than the venv's (another server)
    process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return None if self.ui_port is None else f"http://{LOOPBACK}:{self.ui_port}"

    def argv(self) -> list[str]:
        argv = dev_server_argv(
            self.port,
            self.http_port,
            self.metrics_port,
            self.ui_port,
            self.db_filename,
            self.namespaces,
        )
        if self.binary is not None:
            argv[0] = str(self.binary)
        return argv

    def start(self, timeout: float = 30.0, *, keep_ports: bool = False) -> TemporalDevServer:
        """Start and wait until it serves. Ports are picked free a moment before the server
        binds them, so another process can take one in between (an outgoing connection's
        ephemeral port, say): then it starts again on fresh ports, unless `keep_ports`."""
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                return self._start(timeout)
            except ProcessStartError as exc:
                if keep_ports or attempt == _PORT_ATTEMPTS or _PORT_TAKEN not in str(exc):
                    raise
                self.port, self.http_port, self.metrics_port, ui_port = free_ports(4)
                self.ui_port = None if self.ui_port is None else ui_port
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> TemporalDevServer:
        if self.db_filename is not None:
            self.db_filename.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)  # so a failure's log tail is this attempt's
        self.process = ManagedProcess(
            f"temporal-{self.name}",
            self.argv(),
            ready=lambda _p: tcp_open(LOOPBACK, self.port),
            ready_timeout=timeout,
            log_path=self.log_path,
            detached=self.detached,
        ).start()
        try:
            wait_serving(self.address, timeout, alive=self.process.alive)
        except BaseException as exc:
            self.process.stop(timeout=3)
            raise ProcessStartError(f"{exc}\n{log_tail(self.log_path)}") from exc
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM, SIGKILL after `timeout` (0 is a crash)."""
        if self.process is not None:
            self.process.stop(timeout=timeout)

    def restart(self, timeout: float = 30.0) -> TemporalDevServer:
        """Stop and start again on the same ports and SQLite file (crash/restart tests)."""
        self.stop()
        return self.start(timeout, keep_ports=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def state(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "port": self.port,
            "http_port": self.http_port,
            "metrics_port": self.metrics_port,
            "ui_url": self.ui_url,
            "ui_port": self.ui_port,
            "db_filename": str(self.db_filename) if self.db_filename else None,
            "namespaces": list(self.namespaces),
        }


def dev_server(
    name: str,
    *,
    headless: bool,
    db_filename: Path | None = None,
    log_path: Path | None = None,
    namespaces: Sequence[str] = (),
    detached: bool = False,
    binary: Path | None = None,
) -> TemporalDevServer:
    """A not-yet-started dev server with fresh free ports (`binary`: another `temporal` CLI,
    whose embedded server it runs)."""
    port, http_port, metrics_port, ui_port = free_ports(4)
    return TemporalDevServer(
        name=name,
        port=port,
        http_port=http_port,
        metrics_port=metrics_port,
        ui_port=None if headless else ui_port,
        db_filename=db_filename,
        log_path=log_path,
        namespaces=tuple(namespaces),
        detached=detached,
        binary=binary,
    )


def bootstrap_server(
    workdir: Path, *, persistent: bool = True, detached: bool = False
) -> TemporalDevServer:
    """The server that runs temporal-bootstrap's own workflows (Web UI on)."""
    return dev_server(
        "bootstrap",
        headless=False,
        db_filename=workdir / "bootstrap.sqlite" if persistent else None,
        log_path=workdir / "temporal-bootstrap.log",
        detached=detached,
    )


def target_server(workdir: Path, *, detached: bool = False) -> TemporalDevServer:
    """The frontend of the cluster being installed (headless, in memory)."""
    return dev_server(
        "target", headless=True, log_path=workdir / "temporal-target.log", detached=detached
    )


@contextlib.contextmanager
def running(server: TemporalDevServer) -> Iterator[TemporalDevServer]:
    """Fixture-style: start, yield, always stop by PID."""
    try:
        yield server.start()
    finally:
        server.stop()
