"""SPDY/3.1 framing, as kubectl's port-forward speaks it (kubernetes apimachinery
`pkg/util/httpstream/spdy` on top of `moby/spdystream`, whose `spdy/` package is the Go SPDY/3
framer). Written from the SPDY/3.1 draft and read against that framer; used by
portforward_spdy.py.

A frame is either a control frame, `1 | version(15) | type(16)`, `flags(8) | length(24)`,
payload; or a data frame, `0 | stream id(31)`, `flags(8) | length(24)`, data. Control types:
SYN_STREAM 1 (stream id, associated stream id, priority(3)+unused(5), slot, header block),
SYN_REPLY 2 (stream id, header block), RST_STREAM 3 (stream id, status), SETTINGS 4 (count,
then flags(8)+id(24) / value pairs), PING 6 (id), GOAWAY 7 (last good stream id, status),
HEADERS 8 (stream id, header block), WINDOW_UPDATE 9 (stream id, delta). Flag FIN (0x01) ends
the sender's half of a stream.

Header blocks are `count(32)` then `len(32) name len(32) value` pairs (lowercase names; several
values joined by NUL), compressed with zlib primed with SPDY/3's dictionary. Each direction of a
session has ONE compression context that spans all its frames: every block is a sync-flushed
continuation of the previous one, so blocks must be compressed and sent in the same order
(`SpdyWriter` holds a lock around both), and decompressed in arrival order.

Not modelled: flow control (spdystream neither sends WINDOW_UPDATE nor honours the peer's
windows, so neither does this), priorities and server push.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1,
    2,
    3,
    4,
    6,
    7,
    8,
    9,
)
FLAG_FIN = 0x01
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL = 1, 2, 3, 5
MAX_DATA = 0xFFFFFF

# SPDY/3's header dictionary: 4-byte-length-prefixed common names and values, then a run of
# status codes, reason phrases, dates and media types.
_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base "
    "content-encoding content-language content-length content-location content-md5 "
    "content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
    "server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status|200 OK|version|HTTP/1.1|url|public|set-cookie|"
    "keep-alive|origin"
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def _dictionary() -> bytes:
    head, _, rest = _WORDS.partition(" status|")
    words = [*head.split(" "), "status", *rest.split("|")]
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + _TAIL.encode()


DICTIONARY = _dictionary()


class SpdyError(Exception):
    """The peer broke the framing: the session cannot go on."""


@dataclass(frozen=True)
class Frame:
    control: bool
    kind: int  # control frame type; 0 for data
    flags: int
    stream_id: int  # data frames, and control frames that name one (0 otherwise)
    payload: bytes  # after the stream id for SYN_STREAM/SYN_REPLY/HEADERS/RST/WINDOW_UPDATE
    headers: dict[str, list[str]] | None = None

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


def encode_headers(headers: dict[str, str]) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode(), value.encode()
        out += [struct.pack(">I", len(n)), n, struct.pack(">I", len(v)), v]
    return b"".join(out)


def decode_headers(block: bytes) -> dict[str, list[str]]:
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        pos, found = 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4 : pos + 4 + n].decode()
            pos += 4 + n
            (n,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4 : pos + 4 + n].decode()
            pos += 4 + n
            if name in found:
                raise SpdyError(f"duplicate header {name!r}")
            found[name] = value.split("\x00")
    except (struct.error, UnicodeDecodeError) as exc:
        raise SpdyError(f"malformed header block: {exc}") from None
    if pos != len(block):
        raise SpdyError("header block longer than its pairs")
    return found


class FrameReader:
    """Splits a byte stream (or WebSocket messages carrying one) into frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from(">II", self._buffer, 0)
            length = second & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            frames.append(self._frame(first, second >> 24, payload))
        return frames

    def _frame(self, first: int, flags: int, payload: bytes) -> Frame:
        if not first & 0x80000000:
            return Frame(False, 0, flags, first & 0x7FFFFFFF, payload)
        version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise SpdyError(f"unsupported SPDY version {version}")
        block_at = {SYN_STREAM: 10, SYN_REPLY: 4, HEADERS: 4}.get(kind)
        if block_at is not None:
            if len(payload) < block_at:
                raise SpdyError(f"control frame {kind} too short")
            stream_id = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            try:
                block = self._inflate.decompress(payload[block_at:])
            except zlib.error as exc:
                raise SpdyError(f"header block does not decompress: {exc}") from None
            return Frame(True, kind, flags, stream_id, payload[4:], decode_headers(block))
        if kind in (RST_STREAM, WINDOW_UPDATE, GOAWAY):
            if len(payload) != 8:
                raise SpdyError(f"control frame {kind} must be 8 bytes long")
            stream_id = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            return Frame(True, kind, flags, stream_id, payload[4:])
        if kind == PING and len(payload) != 4:
            raise SpdyError("PING must be 4 bytes long")
        return Frame(True, kind, flags, 0, payload)


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    flags = FLAG_FIN if fin else 0
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


class SpdyWriter:
    """Sends frames through `send` (one call per frame), compressing header blocks in the
    order the frames go out."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        self._send = send
        self._deflate = zlib.compressobj(9, zdict=DICTIONARY)
        self._lock = asyncio.Lock()
        self.closed = False

    async def _write(self, frame: bytes) -> None:
        if not self.closed:
            await self._send(frame)

    async def syn_reply(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> None:
        async with self._lock:
            block = self._deflate.compress(encode_headers(headers))
            block += self._deflate.flush(zlib.Z_SYNC_FLUSH)
            flags = FLAG_FIN if fin else 0
            await self._write(_control(SYN_REPLY, flags, struct.pack(">I", stream_id) + block))

    async def data(self, stream_id: int, data: bytes, fin: bool = False) -> None:
        async with self._lock:
            for start in range(0, max(len(data), 1), MAX_DATA):
                chunk = data[start : start + MAX_DATA]
                last = start + MAX_DATA >= len(data)
                await self._write(data_frame(stream_id, chunk, fin and last))

    async def rst_stream(self, stream_id: int, status: int) -> None:
        async with self._lock:
            await self._write(_control(RST_STREAM, 0, struct.pack(">II", stream_id, status)))

    async def ping(self, ping_id: bytes) -> None:
        async with self._lock:
            await self._write(_control(PING, 0, ping_id))

    async def goaway(self, last_stream_id: int, status: int = 0) -> None:
        async with self._lock:
            await self._write(_control(GOAWAY, 0, struct.pack(">II", last_stream_id, status)))
