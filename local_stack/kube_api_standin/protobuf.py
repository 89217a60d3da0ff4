"""Just enough Kubernetes protobuf: decoding the request bodies helm and kubectl send (Secrets
for helm's release storage, DeleteOptions, `kubectl create token`'s TokenRequest) and encoding the minimal OpenAPI v2 document it validates with.
Responses stay JSON, which the Go clients accept."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

from .errors import ApiError

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
# Clients ask with "...spec.v2@v1.0+protobuf"; the answer drops the "@", which Go cannot parse.
OPENAPI_V2_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        result |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return result, i
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, Any]]:
    """(field number, int or bytes) for each field on the wire."""
    i = 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        num, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield num, value
        elif wire == 2:
            size, i = _varint(buf, i)
            yield num, buf[i : i + size]
            i += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            yield num, int.from_bytes(buf[i : i + width], "little")
            i += width
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _map_entry(buf: bytes) -> tuple[str, bytes]:
    f = dict(fields(buf))
    return f.get(1, b"").decode(), f.get(2, b"")


def _object_meta(buf: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    names = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for num, value in fields(buf):
        if num in names:
            meta[names[num]] = value.decode()
        elif num in (11, 12):
            key, val = _map_entry(value)
            meta.setdefault("labels" if num == 11 else "annotations", {})[key] = val.decode()
        elif num == 13:
            ref = dict(fields(value))
            meta.setdefault("ownerReferences", []).append(
                {
                    "apiVersion": ref.get(5, b"").decode(),
                    "kind": ref.get(1, b"").decode(),
                    "name": ref.get(3, b"").decode(),
                    "uid": ref.get(4, b"").decode(),
                    **({"controller": bool(ref[6])} if 6 in ref else {}),
                }
            )
        elif num == 14:
            meta.setdefault("finalizers", []).append(value.decode())
    return meta


def _secret(buf: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for num, value in fields(buf):
        if num == 1:
            obj["metadata"] = _object_meta(value)
        elif num == 2:
            key, val = _map_entry(value)
            obj.setdefault("data", {})[key] = base64.b64encode(val).decode()
        elif num == 3:
            obj["type"] = value.decode()
        elif num == 4:
            key, val = _map_entry(value)
            obj.setdefault("stringData", {})[key] = val.decode()
        elif num == 5:
            obj["immutable"] = bool(value)
    return obj


def _config_map(buf: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for num, value in fields(buf):
        if num == 1:
            obj["metadata"] = _object_meta(value)
        elif num in (2, 3):
            key, val = _map_entry(value)
            if num == 2:
                obj.setdefault("data", {})[key] = val.decode()
            else:
                obj.setdefault("binaryData", {})[key] = base64.b64encode(val).decode()
        elif num == 4:
            obj["immutable"] = bool(value)
    return obj


def _metadata_only(buf: bytes) -> dict[str, Any]:
    """Kinds whose create bodies from kubectl carry nothing else the stand-in needs."""
    meta = next((v for n, v in fields(buf) if n == 1), b"")
    return {"metadata": _object_meta(meta)}


def _delete_options(buf: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for num, value in fields(buf):
        if num == 1:
            obj["gracePeriodSeconds"] = value
        elif num == 2:
            pre = dict(fields(value))
            obj["preconditions"] = {
                k: pre[n].decode() for n, k in ((1, "uid"), (2, "resourceVersion")) if n in pre
            }
        elif num == 3:
            obj["orphanDependents"] = bool(value)
        elif num == 4:
            obj["propagationPolicy"] = value.decode()
        elif num == 5:
            obj.setdefault("dryRun", []).append(value.decode())
    return obj


def _token_request(buf: bytes) -> dict[str, Any]:
    """authentication/v1 TokenRequest: spec (2) = {audiences (1), expirationSeconds (4)};
    the bound object reference (3) is not served."""
    spec: dict[str, Any] = {}
    for num, value in fields(buf):
        if num != 2:
            continue
        for field_num, field_value in fields(value):
            if field_num == 1:
                spec.setdefault("audiences", []).append(field_value.decode())
            elif field_num == 4:
                spec["expirationSeconds"] = field_value
    return {"spec": spec}


DECODERS: dict[str, Callable[[bytes], dict[str, Any]]] = {
    "TokenRequest": _token_request,
    "Secret": _secret,
    "ConfigMap": _config_map,
    "Namespace": _metadata_only,
    "ServiceAccount": _metadata_only,
    "DeleteOptions": _delete_options,
}


def decode(body: bytes) -> dict[str, Any]:
    """Decode a protobuf envelope (magic + runtime.Unknown) into the object's JSON form."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "protobuf body lacks the k8s envelope")
    try:
        unknown = dict(fields(body[len(MAGIC) :]))
        type_meta = dict(fields(unknown.get(1, b"")))
        api_version, kind = type_meta.get(1, b"").decode(), type_meta.get(2, b"").decode()
        decoder = DECODERS.get(kind)
        if decoder is None:
            raise ApiError(415, "UnsupportedMediaType", f"stand-in cannot decode protobuf {kind}")
        obj = decoder(unknown.get(2, b""))
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "BadRequest", f"malformed protobuf body: {e}") from e
    return {"apiVersion": api_version, "kind": kind, **obj}


def _field(num: int, payload: bytes) -> bytes:
    size, out = len(payload), bytearray()
    while True:
        byte, size = size & 0x7F, size >> 7
        out.append(byte | (0x80 if size else 0))
        if not size:
            break
    return bytes([num << 3 | 2]) + bytes(out) + payload


def openapi_v2() -> bytes:
    """openapi_v2.Document{swagger: "2.0", info: {title, version}}: no schemas, so clients
    skip validating kinds they cannot find."""
    info = _field(1, b"Kubernetes API stand-in") + _field(2, b"v1.32.0")
    return _field(1, b"2.0") + _field(2, info)
