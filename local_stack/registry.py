"""An image registry stand-in on 127.0.0.1: the OCI distribution API, token flow included,
whose catalog is the images the shipped charts pin.

No internet here, and the image preflight (activities/check_images.py) must meet what it
meets on Docker Hub, so this serves the part of the distribution API a runtime uses to
resolve a tag, the way Docker Hub serves it:

- every `/v2/...` request without a valid bearer token is answered 401 with
  `WWW-Authenticate: Bearer realm="<this>/token",service="registry.standin",scope=...`
  (`/v2/` itself: without `scope`), and error `UNAUTHORIZED`;
- `GET /token?service=registry.standin&scope=repository:<name>:pull` gives an anonymous
  token (`token` and `access_token`, `expires_in` 300). As on Docker Hub, a token for a
  repository the registry does not have grants nothing, and the HEAD with it is answered
  401 again ("pull access denied ... may require 'docker login'" is how docker says it);
- `HEAD` / `GET /v2/<name>/manifests/<tag or digest>`: 200 with `Docker-Content-Digest`,
  `Content-Type` and `Content-Length` of the tag's manifest, an OCI image index (the
  Temporal images are multi-architecture); 404 `MANIFEST_UNKNOWN` for a tag it does not
  have, and also when the Accept header takes no index type (what distribution answers for
  an OCI index a client cannot read: "OCI index found, but accept header does not support
  OCI indexes").

The catalog: `server.image`, `admintools.image` and `web.image` of every chart in
the machine's chart mirror folder, TEMPORAL_BOOTSTRAP_CHART_MIRROR (docker.io names: `temporalio/server`, ...), plus what a test `add`s.
Every request is logged (`requests`: method, path, status) for tests.

A tag can move (`move_tag`: what a re-push does): its manifest changes, so its digest does;
the earlier manifest stays reachable by its digest, as on a registry before garbage
collection. The digest is the SHA-256 of the manifest's bytes, as the distribution API
defines it.

Simplifications: the manifests are made up (an OCI index with no entries and an annotation
naming the tag and its push count; no blobs, no `/v2/<name>/blobs`, no `tags/list` or
`_catalog`); the digest is that of the OCI index form also when a client that takes only the
Docker list type is served that type; tokens never expire; no push API; one registry host
stands for every registry a mirror maps to it.

    python -m local_stack.registry --port 0   # serve until SIGTERM; prints {"url": ...}
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import re
import secrets
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from local_stack.http_thread import LoopbackHttpServer
from local_stack.processes import wait_for_stop_signal


def _mirror_folder() -> Path | None:
    """The machine's chart mirror folder (TEMPORAL_BOOTSTRAP_CHART_MIRROR), never a folder
    beside the checkout by itself (#18.1)."""
    from adapters.charts import mirror_setting

    mirror = mirror_setting()
    return Path(mirror[1]) if mirror and "://" not in mirror[1] else None


SERVICE = "registry.standin"
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")


def chart_images(charts: Path | None = None) -> set[str]:
    """`repository:tag` of the three images each chart's values.yaml pins (the charts of
    the mirror folder unless `charts` is given)."""
    found: set[str] = set()
    folder = charts or _mirror_folder()
    for values_file in sorted(folder.glob("temporal-*/values.yaml")) if folder else ():
        values = yaml.safe_load(values_file.read_text()) or {}
        for component in ("server", "admintools", "web"):
            image = (values.get(component) or {}).get("image") or {}
            if image.get("repository") and image.get("tag"):
                found.add(f"{image['repository']}:{image['tag']}")
    return found


class RegistryStandIn(LoopbackHttpServer):
    def __init__(self, images: set[str] | None = None, port: int = 0):
        self.images: set[str] = set(chart_images() if images is None else images)
        self.requests: list[dict[str, Any]] = []
        self._pushes: dict[str, int] = {}  # "name:tag" -> times it moved
        self._tokens: dict[str, set[str]] = {}  # token -> repositories it may pull
        self._lock = threading.Lock()
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802 - the base's name
                standin._handle(self, body=True)

            def do_HEAD(self) -> None:  # noqa: N802 - the base's name
                standin._handle(self, body=False)

            def send_response(self, code: int, message: str | None = None) -> None:
                # Recorded before the answer leaves (headers are buffered until then), so a
                # client that got its answer finds its request in `requests`.
                standin._record(self, code)
                super().send_response(code, message)

        self._bind(Handler, port, "registry-standin")

    @classmethod
    def start(cls, images: set[str] | None = None, port: int = 0) -> RegistryStandIn:
        return cls(images, port)._run()

    def has(self, image: str) -> bool:
        """Is `image` (a docker.io name, `repo:tag`, `library/` optional) in the catalog? A
        reference with a digest (`repo@sha256:...`, `repo:tag@sha256:...`) is pulled by the
        digest alone, as containerd does: the tag is not looked at."""
        if "@" in image:
            named, _, digest = image.partition("@")
            if ":" in named.rsplit("/", 1)[-1]:
                named = named.rpartition(":")[0]
            for prefix in ("docker.io/", "index.docker.io/"):
                named = named.removeprefix(prefix)
            return any(
                self._by_digest(candidate, digest) is not None
                for candidate in (named, named.removeprefix("library/"))
            )
        name, _, tag = (
            image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
        )
        for prefix in ("docker.io/", "index.docker.io/"):
            name = name.removeprefix(prefix)
        with self._lock:
            return (
                f"{name}:{tag}" in self.images
                or f"{name.removeprefix('library/')}:{tag}" in self.images
            )

    def add(self, image: str) -> None:
        with self._lock:
            self.images.add(image)

    def move_tag(self, image: str) -> str:
        """Re-push `image` (`name:tag`, as in the catalog) with other content; returns its
        new digest."""
        with self._lock:
            assert image in self.images, f"{image} is not in the catalog"
            self._pushes[image] = self._pushes.get(image, 0) + 1
        return self.digest(image)

    def digest(self, image: str, push: int | None = None) -> str:
        """The digest `name:tag` answers now (or after its `push`-th move)."""
        return "sha256:" + hashlib.sha256(self._manifest(image, push)).hexdigest()

    def _manifest(self, image: str, push: int | None = None) -> bytes:
        with self._lock:
            count = self._pushes.get(image, 0) if push is None else push
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": INDEX_TYPES[0],
                "manifests": [],
                "annotations": {"org.opencontainers.image.ref.name": f"{image}#{count}"},
            },
            sort_keys=True,
        ).encode()

    def _by_digest(self, name: str, digest: str) -> str | None:
        """The `name:tag` one of whose pushes has `digest`."""
        with self._lock:
            tags = [i for i in self.images if i.rpartition(":")[0] == name]
            pushes = {i: self._pushes.get(i, 0) for i in tags}
        for image in tags:
            if any(self.digest(image, n) == digest for n in range(pushes[image] + 1)):
                return image
        return None

    def _repositories(self) -> set[str]:
        with self._lock:
            return {i.rpartition(":")[0] for i in self.images}

    # -- the API -----------------------------------------------------------------------
    def _handle(self, request: http.server.BaseHTTPRequestHandler, body: bool) -> None:
        self._answer(request, urllib.parse.urlparse(request.path), body)

    def _record(self, request: http.server.BaseHTTPRequestHandler, status: int) -> None:
        parsed = urllib.parse.urlparse(request.path)
        with self._lock:
            self.requests.append(
                {
                    "method": request.command,
                    "path": parsed.path,
                    "query": parsed.query,
                    "status": status,
                }
            )

    def _answer(self, request: http.server.BaseHTTPRequestHandler, parsed: Any, body: bool) -> int:
        if parsed.path == "/token":
            query = dict(urllib.parse.parse_qsl(parsed.query))
            scope = re.match(r"^repository:(.+):pull$", query.get("scope", ""))
            token = secrets.token_urlsafe(24)
            granted = {scope.group(1)} & self._repositories() if scope else set()
            with self._lock:
                self._tokens[token] = granted
            return _json(
                request, 200, {"token": token, "access_token": token, "expires_in": 300}, body
            )
        if not parsed.path.startswith("/v2/"):
            return _json(
                request, 404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]}, body
            )
        match = _MANIFEST_PATH.match(parsed.path)
        name = match.group("name") if match else None
        auth = request.headers.get("Authorization", "")
        presented = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        with self._lock:
            allowed = self._tokens.get(presented)
        if allowed is None or (name is not None and name not in allowed):
            challenge = f'Bearer realm="{self.url}/token",service="{SERVICE}"'
            if name is not None:
                challenge += f',scope="repository:{name}:pull"'
            return _json(
                request,
                401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                body,
                {"WWW-Authenticate": challenge},
            )
        if match is None:
            return _json(request, 200, {}, body)  # /v2/: the API version check
        reference = urllib.parse.unquote(match.group("reference"))
        if reference.startswith("sha256:"):
            image = self._by_digest(name, reference) if name else None
            if image is None:
                return _json(request, 404, _unknown(name, reference), body)
            digest = reference
        elif f"{name}:{reference}" in self.images:
            image = f"{name}:{reference}"
            digest = self.digest(image)
        else:
            return _json(request, 404, _unknown(name, reference), body)
        accepted = request.headers.get("Accept", "")
        media_type = next((t for t in INDEX_TYPES if t in accepted), None)
        if media_type is None:
            return _json(request, 404, _unknown(name, reference, index=True), body)
        with self._lock:
            pushes = self._pushes.get(image, 0)
        # The tag's current manifest, or the earlier push a digest asks for.
        manifest = next(
            m
            for m in (self._manifest(image, n) for n in range(pushes, -1, -1))
            if "sha256:" + hashlib.sha256(m).hexdigest() == digest
        )
        request.send_response(200)
        request.send_header("Content-Type", media_type)
        request.send_header("Content-Length", str(len(manifest)))
        request.send_header("Docker-Content-Digest", digest)
        request.end_headers()
        if body:
            request.wfile.write(manifest)
        return 200


def _unknown(name: str | None, reference: str, index: bool = False) -> dict[str, Any]:
    message = (
        "OCI index found, but accept header does not support OCI indexes"
        if index
        else "manifest unknown"
    )
    return {
        "errors": [
            {
                "code": "MANIFEST_UNKNOWN",
                "message": message,
                "detail": {"Tag": reference, "Name": name},
            }
        ]
    }


def _json(
    request: http.server.BaseHTTPRequestHandler,
    status: int,
    data: Any,
    body: bool,
    headers: dict[str, str] | None = None,
) -> int:
    payload = json.dumps(data).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(payload)))
    for key, value in (headers or {}).items():
        request.send_header(key, value)
    request.end_headers()
    if body:
        request.wfile.write(payload)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.registry")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    registry = RegistryStandIn.start(port=args.port)
    print(json.dumps({"url": registry.url, "images": sorted(registry.images)}), flush=True)
    wait_for_stop_signal()
    registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
