"""A Temporal client to the new cluster's frontend, built once in worker.py.

`TargetTemporalClients` connects a `temporalio.client.Client` to `env.frontend_address` with
the environment's frontend TLS settings and caches it per (address, TLS settings). A failed
connection is never cached, so a frontend that is still starting is dialled again next time.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.service import TLSConfig

from activities.errors import ErrorType, activity_error
from declared_state.models import Environment, FrontendTls

_CacheKey = tuple[str, bool, str | None, str | None]


class FrontendUnreachable(Exception):
    """The frontend could not be dialled (connection refused, DNS failure, TLS handshake...)."""

    def __init__(self, address: str, reason: str):
        self.address = address
        self.reason = reason
        super().__init__(f"{address}: {reason}")


def tls_config(tls: FrontendTls) -> TLSConfig | bool:
    """FrontendTls -> what `Client.connect(tls=...)` takes; False when TLS is off."""
    if not tls.enabled:
        return False
    ca: bytes | None = None
    if tls.ca_file:
        path = Path(tls.ca_file)  # absolute: resolved by the loader
        try:
            ca = path.read_bytes()
        except OSError as exc:
            raise activity_error(
                f"frontend.tls.ca_file {tls.ca_file!r} cannot be read ({exc.strerror}); "
                "fix the path in the environment file",
                ErrorType.CONFIGURATION_MISMATCH,
            ) from None
    return TLSConfig(server_root_ca_cert=ca, domain=tls.server_name)


class TargetTemporalClients:
    """Clients to the target cluster's frontend, one per address and TLS settings."""

    def __init__(self, namespace: str = "default"):
        self.namespace = namespace
        self._clients: dict[_CacheKey, Client] = {}
        self._lock = asyncio.Lock()

    async def client(self, env: Environment, timeout: float | None = None) -> Client:
        """The cached client for `env`'s frontend, connecting it on first use.

        Raises `FrontendUnreachable` when the frontend cannot be dialled (within `timeout`
        seconds if given); callers decide whether that means "keep waiting" or an error.
        An address or TLS setting no attempt can use is a non-retryable ApplicationError.
        """
        tls = env.frontend.tls
        address = env.frontend_address
        key: _CacheKey = (address, tls.enabled, tls.server_name, tls.ca_file)
        async with self._lock:
            found = self._clients.get(key)
            if found is not None:
                return found
            try:
                client = await asyncio.wait_for(
                    Client.connect(address, namespace=self.namespace, tls=tls_config(tls)),
                    timeout,
                )
            except TimeoutError:
                raise FrontendUnreachable(
                    address, f"no answer to connect within {timeout:.1f}s"
                ) from None
            except RuntimeError as exc:
                # The SDK reports refused connections, DNS and TLS failures as RuntimeError.
                raise FrontendUnreachable(address, str(exc)) from None
            except ValueError as exc:
                # The SDK refuses a malformed target before dialling: no attempt can succeed.
                raise activity_error(
                    f"Temporal frontend address {address!r} is not a host:port the client "
                    f"accepts ({exc}); fix frontend.address in the environment file",
                    ErrorType.CONFIGURATION_MISMATCH,
                ) from None
            self._clients[key] = client
            return client


def attempt_deadline(max_wait: timedelta) -> float:
    """A `time.monotonic()` deadline: `max_wait` from now, but ending a little before this
    attempt's own start-to-close / schedule-to-close deadline, so the activity can still raise
    an error naming what it waited for instead of being cut off by the timeout."""
    now_mono, now_utc = time.monotonic(), datetime.now(UTC)
    remaining = max_wait.total_seconds()
    info = activity.info()
    ends = []
    if info.start_to_close_timeout:
        ends.append((info.started_time, info.start_to_close_timeout))
    if info.schedule_to_close_timeout:
        ends.append((info.scheduled_time, info.schedule_to_close_timeout))
    for start, timeout in ends:
        margin = min(2.0, timeout.total_seconds() / 10)
        left = (start + timeout - now_utc).total_seconds() - margin
        remaining = min(remaining, left)
    return now_mono + max(remaining, 0.0)
