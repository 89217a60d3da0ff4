"""kubectl's port-forward: SPDY/3.1 streams (spdy.py), over either transport kubectl uses.

kubectl 1.30+ first asks for `GET .../pods/{name}/portforward` as a WebSocket upgrade offering
subprotocol `SPDY/3.1+portforward.k8s.io` (KEP-4006, client-go tools/portforward
tunneling_dialer.go): the SPDY byte stream is carried in binary WebSocket messages, any split
(tunneling_connection.go reads messages as one stream and writes each write as one message).
If the API server refuses that, it falls back to `POST .../portforward` with `Connection:
Upgrade`, `Upgrade: SPDY/3.1` and `X-Stream-Protocol-Version: portforward.k8s.io`; the answer
is `101 Switching Protocols` with the same upgrade and the chosen protocol version, after which
the connection carries SPDY frames directly. (`KUBECTL_PORT_FORWARD_WEBSOCKETS=false` makes
kubectl go straight to that.) The ports are not in the query string: each forwarded
connection is named by its streams' headers.

What a session does is the kubelet's (pkg/kubelet/cri/streaming/portforward/httpstream.go):
for every local connection kubectl opens an error stream and a data stream, with headers
`streamType: error|data`, `port` and `requestID` (without `requestID`, as from old clients, the
kubelet pairs an error stream with id N and a data stream with id N+2). Each stream is
accepted with an empty SYN_REPLY; a stream of any other type is reset. When both streams of a
request have arrived, the port inside the pod is dialled (where the pod's container runtime
serves it, pods.py): bytes flow between the data stream and that connection; a half-close
(FIN) from kubectl half-closes the pod side; when the pod side ends, both streams are closed.
A port that cannot be reached is reported as text on the error stream, then both are closed,
and kubectl prints it (`an error occurred forwarding 7233 -> 7233: error forwarding port ...`)
and keeps listening. PINGs are echoed; a GOAWAY or the end of the transport ends the session
and every forwarded connection in it.

Simplifications: no flow control (see spdy.py); a request whose second stream never arrives is
kept until the session ends, where the kubelet gives up after 30 s and reports a timeout; the
pod is looked up once, at the upgrade, so a pod deleted later keeps its open connections (as
with kubelet until the container dies) and later connections still reach the address its
runtime reports, or fail as refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from . import spdy

if TYPE_CHECKING:
    from .pods import Pods
    from .store import Obj

WEBSOCKET_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
STREAM_PROTOCOL = "portforward.k8s.io"
_READ = 32 * 1024


def unreachable(pod: Obj, port: int | str, why: str) -> str:
    """The kubelet's message for a port inside the pod that cannot be reached."""
    meta = pod["metadata"]
    return (
        f"error forwarding port {port} to pod {meta['name']}, uid {meta['uid']}: "
        f"failed to connect to localhost:{port} inside the pod's network namespace: {why}"
    )


async def dial(
    pods: Pods, pod: Obj, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | str:
    """A connection to `port` inside `pod`, or the kubelet's message saying why not."""
    where = pods.address(pod, port)
    why = "connection refused"
    if where is not None:
        try:
            return await asyncio.open_connection(*where)
        except OSError as exc:
            why = exc.strerror or str(exc)
    return unreachable(pod, port, why)


@dataclass
class _Request:
    request_id: str
    streams: dict[str, int] = field(default_factory=dict)  # streamType -> stream id
    port: str = ""
    writer: asyncio.StreamWriter | None = None
    early: bytearray = field(default_factory=bytearray)  # from kubectl before the dial ended
    client_done: bool = False  # kubectl half-closed the data stream
    task: asyncio.Task[None] | None = None


class SpdyPortForward:
    """One port-forward session: frames in from `incoming`, frames out through `send`."""

    def __init__(self, pods: Pods, pod: Obj, send: Callable[[bytes], Awaitable[None]]) -> None:
        self.pods, self.pod = pods, pod
        self.out = spdy.SpdyWriter(send)
        self.reader = spdy.FrameReader()
        self.requests: dict[str, _Request] = {}
        self.by_stream: dict[int, _Request] = {}
        self.last_stream = 0

    async def run(self, incoming: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in incoming:
                for frame in self.reader.feed(chunk):
                    if not await self._handle(frame):
                        return
        except spdy.SpdyError:
            with contextlib.suppress(ConnectionError):
                await self.out.goaway(self.last_stream, spdy.PROTOCOL_ERROR)
        finally:
            self.out.closed = True
            tasks = [r.task for r in self.requests.values() if r.task is not None]
            for request in self.requests.values():
                if request.writer is not None:
                    request.writer.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, frame: spdy.Frame) -> bool:
        """Act on one frame; False ends the session."""
        if not frame.control:
            await self._data(frame)
        elif frame.kind == spdy.SYN_STREAM:
            await self._new_stream(frame)
        elif frame.kind == spdy.RST_STREAM:
            request = self.by_stream.get(frame.stream_id)
            if request is not None and request.writer is not None:
                request.writer.close()
        elif frame.kind == spdy.PING:
            if int.from_bytes(frame.payload, "big") % 2 == 1:  # the client's, not our reply
                await self.out.ping(frame.payload)
        elif frame.kind == spdy.GOAWAY:
            return False
        # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do without flow control.
        return True

    async def _new_stream(self, frame: spdy.Frame) -> None:
        headers = {k: v[0] for k, v in (frame.headers or {}).items()}
        kind = headers.get("streamtype", "")
        self.last_stream = max(self.last_stream, frame.stream_id)
        if kind not in ("error", "data"):
            await self.out.rst_stream(frame.stream_id, spdy.CANCEL)
            return
        request_id = headers.get("requestid") or str(
            frame.stream_id if kind == "error" else frame.stream_id - 2
        )
        request = self.requests.setdefault(request_id, _Request(request_id))
        await self.out.syn_reply(frame.stream_id, {})
        if kind in request.streams:
            # The kubelet writes this on the pair's error stream.
            await self._error(
                request,
                f"error processing stream for request {request_id}: {kind} stream already assigned",
            )
            return
        request.streams[kind] = frame.stream_id
        self.by_stream[frame.stream_id] = request
        if kind == "data":
            request.port = headers.get("port", "")
        if len(request.streams) == 2:
            request.task = asyncio.create_task(self._forward(request))

    async def _error(self, request: _Request, message: str) -> None:
        stream = request.streams.get("error")
        if stream is not None:
            await self.out.data(stream, message.encode())

    async def _forward(self, request: _Request) -> None:
        data, error = request.streams["data"], request.streams["error"]
        try:
            try:
                port = int(request.port)
                if not 0 < port < 65536:
                    raise ValueError
            except ValueError:
                await self._error(
                    request,
                    f"error forwarding port {request.port} to pod "
                    f"{self.pod['metadata']['name']}: invalid port",
                )
                return
            dialled = await dial(self.pods, self.pod, port)
            if isinstance(dialled, str):
                await self._error(request, dialled)
                return
            reader, writer = dialled
            request.writer = writer
            if request.early:
                writer.write(bytes(request.early))
                request.early.clear()
            if request.client_done and writer.can_write_eof():
                writer.write_eof()
            while chunk := await reader.read(_READ):
                await self.out.data(data, chunk)
        except ConnectionError:
            pass
        finally:
            if request.writer is not None:
                request.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.out.data(error, b"", fin=True)
                await self.out.data(data, b"", fin=True)
            self.requests.pop(request.request_id, None)

    async def _data(self, frame: spdy.Frame) -> None:
        request = self.by_stream.get(frame.stream_id)
        if request is None:
            return  # a stream already finished: its late bytes go nowhere
        if frame.stream_id != request.streams.get("data"):
            return  # the error stream carries nothing from the client
        writer = request.writer
        if writer is None:  # kubectl writes as soon as its streams are accepted
            request.early += frame.payload
            request.client_done = request.client_done or frame.fin
            return
        try:
            if frame.payload:
                writer.write(frame.payload)
                await writer.drain()
            if frame.fin and writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, RuntimeError):
            pass


async def serve(pods: Pods, request: web.Request, pod: Obj, tunnelled: bool) -> web.StreamResponse:
    """Upgrade the request (checked by portforward.serve) and run the session until either
    side ends it."""
    if tunnelled:
        ws = web.WebSocketResponse(protocols=(WEBSOCKET_PROTOCOL,), autoping=True)
        await ws.prepare(request)

        async def messages() -> AsyncIterator[bytes]:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    yield msg.data

        await SpdyPortForward(pods, pod, ws.send_bytes).run(messages())
        await ws.close()
        return ws
    raw = _RawBytes()
    # From here on the connection carries SPDY frames, not HTTP: aiohttp hands what arrives
    # to `raw` (as it hands a WebSocket's bytes to its reader).
    request.protocol.set_parser(raw)  # type: ignore[arg-type]
    resp = web.StreamResponse(
        status=101,
        headers={
            "Connection": "Upgrade",
            "Upgrade": "SPDY/3.1",
            "X-Stream-Protocol-Version": STREAM_PROTOCOL,
        },
    )
    resp.force_close()
    await resp.prepare(request)
    transport = request.transport
    assert transport is not None

    async def send(frame: bytes) -> None:
        if transport.is_closing():
            raise ConnectionResetError("the client went away")
        transport.write(frame)

    try:
        await SpdyPortForward(pods, pod, send).run(raw.chunks())
    finally:
        transport.close()
    return resp


class _RawBytes:
    """A payload parser for aiohttp's protocol that passes the upgraded connection's bytes on."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self._queue.put_nowait(None)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk
