"""How the worker and the starter reach the bootstrap Temporal server (the one that runs
temporal-bootstrap's own workflows), built once per process in `main`.

Client settings are the SDK's standard ones (`temporalio.envconfig`, as the temporal CLI
reads them): `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS`,
`TEMPORAL_TLS_CLIENT_CERT_PATH`, `TEMPORAL_TLS_CLIENT_KEY_PATH`,
`TEMPORAL_TLS_SERVER_CA_CERT_PATH`, `TEMPORAL_TLS_SERVER_NAME`, ..., and TOML profiles
(`TEMPORAL_CONFIG_FILE`, `TEMPORAL_PROFILE`). Two settings are temporal-bootstrap's own:
`TEMPORAL_TASK_QUEUE` (default `temporal-bootstrap`) and `TEMPORAL_UI_URL` (for Web UI links).

With no address configured anywhere, the embedded dev server is used (operations/embedded.py).
`--local-stack` (worker and starter alike) fills unset variables from a running
`python -m local_stack up`, read from its state file; nothing else switches that on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime

from adapters.processes import pid_alive
from declared_state.paths import state_dir
from operations.embedded import find_embedded_server, start_embedded_server

TASK_QUEUE = "temporal-bootstrap"
CONNECT_TIMEOUT = 10
"""Seconds a connect may take, its first RPC included (a frozen server accepts the TCP
connection and never answers: without a bound the SDK gives up after ~30 s)."""
# A host name: ASCII letters, digits, '-' and '.', as the SDK's URL parser takes it.
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


class SettingsError(RuntimeError):
    """The client configuration cannot be used; the message names the setting."""


class ConnectTimeout(RuntimeError):
    """The server took the connection but did not answer within CONNECT_TIMEOUT."""


def address_problem(address: str) -> str | None:
    """Why `address` is not HOST:PORT (what the SDK would refuse with a raw ValueError)."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        return "the port after the last ':' must be a number from 1 to 65535"
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
            return None
        except ValueError:
            return "the IPv6 address in [...] is not valid"
    if not _HOST.match(host):
        return "the host must be a name (ASCII letters, digits, '-', '.') or an IP address"
    return None


@dataclass(frozen=True)
class ClientSettings:
    """The bootstrap server's client settings. Never printed whole: it may hold an API key."""

    connect_config: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """What `Client.connect` takes (target_host, namespace, api_key, tls, rpc_metadata)."""
    task_queue: str = TASK_QUEUE
    ui_url: str | None = None

    @property
    def address(self) -> str | None:
        return self.connect_config.get("target_host") or None

    @property
    def namespace(self) -> str:
        return str(self.connect_config.get("namespace") or "default")

    @classmethod
    def load(cls, environ: Mapping[str, str] = os.environ) -> ClientSettings:
        """The standard client configuration (environment over TOML profile)."""
        config_file = environ.get("TEMPORAL_CONFIG_FILE")
        if config_file and not Path(config_file).is_file():
            # The SDK ignores a missing file and falls back to the defaults: an explicit
            # setting that cannot be used must not pick another server silently.
            raise SettingsError(
                f"TEMPORAL_CONFIG_FILE: {config_file} does not exist or is not a file; point "
                "it at a Temporal TOML profile file, or unset it"
            )
        try:
            profile = ClientConfigProfile.load(override_env_vars=dict(environ))
        except Exception as exc:  # the bridge reports TOML and file errors as RuntimeError
            raise SettingsError(f"Temporal client configuration: {exc}") from None
        try:
            connect = dict(profile.to_client_connect_config())
        except (OSError, ValueError) as exc:
            raise SettingsError(f"Temporal client TLS settings: {exc}") from None
        address = str(connect.get("target_host") or "")
        if address and (problem := address_problem(address)):
            source = (
                "TEMPORAL_ADDRESS" if environ.get("TEMPORAL_ADDRESS") else "the profile's address"
            )
            raise SettingsError(
                f"{source}: {address!r} is not HOST:PORT (e.g. temporal.example.com:7233): "
                f"{problem}"
            )
        return cls(
            connect_config=connect,
            task_queue=environ.get("TEMPORAL_TASK_QUEUE") or TASK_QUEUE,
            ui_url=environ.get("TEMPORAL_UI_URL") or None,
        )

    def with_server(self, address: str, ui_url: str | None) -> ClientSettings:
        return replace(
            self,
            connect_config={**self.connect_config, "target_host": address},
            ui_url=self.ui_url or ui_url,
        )

    async def connect(self, runtime: Runtime | None = None) -> Client:
        """A client of the bootstrap server; `runtime`: the SDK runtime it (and a worker on
        it) runs in, the default one when None (the worker's has a metrics endpoint)."""
        if not self.address:
            raise SettingsError("no Temporal address: resolve the embedded server first")
        config = {"namespace": "default", **self.connect_config}
        try:
            return await asyncio.wait_for(
                Client.connect(**config, data_converter=pydantic_data_converter, runtime=runtime),
                CONNECT_TIMEOUT,
            )
        except TimeoutError:
            raise ConnectTimeout(f"it did not answer within {CONNECT_TIMEOUT} s") from None

    def workflow_url(self, workflow_id: str) -> str | None:
        if not self.ui_url:
            return None
        return f"{self.ui_url}/namespaces/{self.namespace}/workflows/{workflow_id}"


_CONNECT_REASONS = (
    ("Connection refused", "connection refused: nothing listens there"),
    ("dns error", "the host name does not resolve"),
    ("failed to lookup address", "the host name does not resolve"),
    ("timed out", "no answer (timed out)"),
    ("certificate", "TLS certificate problem"),
    ("InvalidContentType", "TLS mismatch: the server does not speak TLS, or needs it"),
)


def connect_failure(address: str | None, exc: Exception) -> str:
    """One line for a failed connect: the SDK's message is a nested Rust error chain."""
    text = str(exc)
    reason = (
        text
        if isinstance(exc, ConnectTimeout)
        else next((why for key, why in _CONNECT_REASONS if key in text), text.splitlines()[0])
    )
    return (
        f"cannot connect to the bootstrap Temporal server {address}: {reason}; check "
        "TEMPORAL_ADDRESS (or TEMPORAL_PROFILE), or start the server"
    )


def resolve(settings: ClientSettings, *, start_embedded: bool) -> ClientSettings | None:
    """`settings` when they name a server; else the embedded server's (started when asked
    to, else only when it already runs), None when there is none."""
    if settings.address:
        return settings
    state = state_dir()
    embedded = start_embedded_server(state) if start_embedded else find_embedded_server(state)
    return None if embedded is None else settings.with_server(embedded.address, embedded.ui_url)


def local_stack_state_file() -> Path:
    return state_dir() / "local-stack" / "stack.json"


def apply_local_stack_env(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Fill unset variables from a running `python -m local_stack up` (its state file, its
    recorded processes all alive); explicit settings win. False when no stack runs."""
    try:
        state = json.loads(local_stack_state_file().read_text())
        processes = state["processes"].values()
        if not processes or not all(
            pid_alive(int(p["pid"]), p.get("start_time")) for p in processes
        ):
            return False
        variables = dict(state["env"])
        ui_url = state["temporal"]["bootstrap"].get("ui_url")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    explicit_address = _configured_address(environ)
    for key, value in variables.items():
        if key == "TEMPORAL_ADDRESS" and explicit_address:
            continue  # a profile's address is as explicit as the variable
        if not environ.get(key):  # empty counts as unset, as everywhere else
            environ[key] = value
    # The stack's Web UI belongs to the stack's server only, never to one set explicitly.
    if ui_url and not explicit_address and not environ.get("TEMPORAL_UI_URL"):
        environ["TEMPORAL_UI_URL"] = ui_url
    return True


def _configured_address(environ: Mapping[str, str]) -> bool:
    """A bootstrap server address is configured: TEMPORAL_ADDRESS or the TOML profile."""
    if environ.get("TEMPORAL_ADDRESS"):
        return True
    try:
        return bool(ClientConfigProfile.load(override_env_vars=dict(environ)).address)
    except Exception:  # noqa: BLE001 - a broken profile is reported by ClientSettings.load
        return False
