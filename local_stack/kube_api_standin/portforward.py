"""`pods/{name}/portforward`: the WebSocket port-forward protocol the kubernetes Python client
speaks (`kubernetes.stream.portforward`).

The client asks for `GET .../pods/{name}/portforward?ports=P[,Q...]` as a WebSocket upgrade
offering subprotocol `v4.channel.k8s.io` (it offers v5 too; the API server picks v4 for
port-forward). Port number i gets two channels, 2i for data and 2i+1 for errors; every binary
frame starts with its channel byte, and the server's first frame on each channel carries the
port as two bytes, little-endian. Then data flows both ways on the data channel; a failure to
reach the port inside the pod is a text on the error channel (kubelet's wording, shortened),
after which the client closes that port's socket.

Inside the "pod", the port is wherever the pod's container runtime serves it (pods.py:
`ContainerRuntime.address`); a pod port no runtime serves refuses connections, as a port no
process listens on would. A pod that does not exist answers 404; one that is not Running
answers 400, as the API server does before upgrading.

kubectl's port-forward (SPDY/3.1, tunnelled in a WebSocket or over a plain SPDY upgrade) is
served by portforward_spdy.py; `serve` picks the protocol the client asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from . import portforward_spdy
from .errors import ApiError, not_found

if TYPE_CHECKING:
    from .pods import Pods
    from .store import Obj

PROTOCOL = "v4.channel.k8s.io"
_READ = 64 * 1024


def _ports(request: web.Request) -> list[int]:
    ports: list[int] = []
    for value in request.query.getall("ports", []):
        for part in value.split(","):
            try:
                port = int(part)
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid port {part!r}") from None
            if not 0 < port < 65536:
                raise ApiError(400, "BadRequest", f"port {port} must be between 1 and 65535")
            ports.append(port)
    if not ports:
        raise ApiError(400, "BadRequest", "at least one port must be specified (ports=...)")
    return ports


async def serve(pods: Pods, request: web.Request, pod: Obj | None, name: str) -> web.StreamResponse:
    if pod is None:
        raise not_found("pods", name)
    offered = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    ]
    upgrade = request.headers.get("Upgrade", "").lower()
    websocket = upgrade == "websocket"
    spdy_tunnel = websocket and portforward_spdy.WEBSOCKET_PROTOCOL in offered
    plain_spdy = upgrade == "spdy/3.1"
    if not (websocket and PROTOCOL in offered) and not spdy_tunnel and not plain_spdy:
        raise ApiError(
            400,
            "BadRequest",
            "unable to upgrade connection: port-forward is served over WebSocket with "
            f"subprotocol {PROTOCOL} or {portforward_spdy.WEBSOCKET_PROTOCOL}, or as an "
            "Upgrade: SPDY/3.1",
        )
    phase = (pod.get("status") or {}).get("phase", "Pending")
    if phase != "Running":
        raise ApiError(
            400,
            "BadRequest",
            f"unable to upgrade connection: pod {name} is not running (phase {phase})",
        )
    if plain_spdy or (spdy_tunnel and PROTOCOL not in offered):
        return await portforward_spdy.serve(pods, request, pod, tunnelled=not plain_spdy)
    ports = _ports(request)  # kubectl sends them in SPDY stream headers instead
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), autoping=True)
    await ws.prepare(request)
    await _Session(pods, pod, ws, ports).run()
    return ws


class _Session:
    def __init__(self, pods: Pods, pod: Obj, ws: web.WebSocketResponse, ports: list[int]):
        self.pods, self.pod, self.ws, self.ports = pods, pod, ws, ports
        self.writers: dict[int, asyncio.StreamWriter] = {}

    async def run(self) -> None:
        for i, port in enumerate(self.ports):
            prefix = port.to_bytes(2, "little")
            await self.ws.send_bytes(bytes([2 * i]) + prefix)
            await self.ws.send_bytes(bytes([2 * i + 1]) + prefix)
        tasks = []
        for i, port in enumerate(self.ports):
            reader = await self._connect(i, port)
            if reader is not None:
                tasks.append(asyncio.create_task(self._from_pod(i, reader)))
        tasks.append(asyncio.create_task(self._from_client()))
        try:
            # The session ends when the client goes away or every pod connection has ended.
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in self.writers.values():
                writer.close()
            await self.ws.close()

    async def _connect(self, i: int, port: int) -> asyncio.StreamReader | None:
        dialled = await portforward_spdy.dial(self.pods, self.pod, port)
        if isinstance(dialled, str):
            await self.ws.send_bytes(bytes([2 * i + 1]) + dialled.encode())
            return None
        reader, self.writers[i] = dialled
        return reader

    async def _from_pod(self, i: int, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(_READ):
            await self.ws.send_bytes(bytes([2 * i]) + data)

    async def _from_client(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            writer = self.writers.get(channel // 2) if channel % 2 == 0 else None
            if writer is not None and data:
                writer.write(data)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
