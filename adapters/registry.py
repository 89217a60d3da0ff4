"""Does an image exist? The OCI distribution API, as a container runtime asks it.

`RegistryClient.exists(reference)` sends `HEAD /v2/<repository>/manifests/<tag>` with the
manifest types a runtime accepts (OCI index and manifest, Docker manifest list and v2
manifest): 200 means the image is there, 404 that it is not. On 401 the registry names how
to authenticate in `WWW-Authenticate`:
- `Bearer realm=...,service=...`: the token flow Docker Hub and most registries use: GET the
  realm with `service` and `scope=repository:<repository>:pull` (anonymously, or with the
  registry's credentials as HTTP basic), then repeat the HEAD with the token;
- `Basic`: the request is repeated with the registry's credentials.
A 401/403 after that (Docker Hub's answer for a repository that does not exist, or a
private one without credentials) is `Denied`, not `missing`: the cluster may hold
imagePullSecrets the worker does not.

Names are read as Docker does: no registry host (a first component without '.' or ':' and
not `localhost`) means Docker Hub (`docker.io`, API at `registry-1.docker.io`), and a
one-component Docker Hub name is under `library/`. `mirrors` maps a registry host to the
base URL asked instead (a pull-through mirror, an air-gapped copy, the local stack's
registry stand-in); the answer of a mirror stands for the registry's. Credentials come from
a Docker `config.json` (`auths.<host>.auth`, base64 `user:password`; Docker Hub's key is
`https://index.docker.io/v1/`) read on the worker: they never leave this module, and no
message quotes them.

Failures to reach a registry (DNS, refused, TLS, timeouts, 5xx, 429) raise
`RegistryUnreachable`; adapters/errors/registry.py turns them into activity errors. Plain
stdlib HTTP (urllib): the product installs without extras.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "https://registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)
TIMEOUT_SECONDS = 10.0
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryUnreachable(Exception):
    """The registry did not answer (the message says how it failed)."""

    def __init__(self, registry: str, url: str, reason: str):
        self.registry, self.url, self.reason = registry, url, reason
        super().__init__(f"{registry} ({url}): {reason}")


@dataclass(frozen=True)
class ImageName:
    """An image reference split as a runtime splits it."""

    registry: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, reference: str) -> ImageName:
        name, tag = reference, "latest"
        slash, colon = reference.rfind("/"), reference.rfind(":")
        if colon > slash:
            name, tag = reference[:colon], reference[colon + 1 :]
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return cls(first, rest, tag)
        repository = name if "/" in name else f"library/{name}"
        return cls(DOCKER_HUB, repository, tag)

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"


Verdict = Literal["found", "missing", "denied"]


@dataclass(frozen=True)
class Answer:
    verdict: Verdict
    registry: str
    """The registry host the image lives on."""
    asked: str
    """The base URL asked (the registry's, or its mirror's)."""
    status: int
    digest: str | None = None
    """`Docker-Content-Digest` of the manifest the tag names now (found images)."""


def read_credentials(path: str | None) -> dict[str, tuple[str, str]]:
    """registry host -> (user, password) from a Docker config.json; {} without a file.
    Raises ValueError (naming the file, never its content) when it cannot be read."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{path} is not a readable Docker config.json ({type(exc).__name__})"
        ) from None
    found: dict[str, tuple[str, str]] = {}
    for key, entry in (data.get("auths") or {}).items() if isinstance(data, dict) else ():
        if not isinstance(entry, dict) or not entry.get("auth"):
            continue
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except ValueError:
            raise ValueError(f"{path}: auths.{key}.auth is not base64 of user:password") from None
        host = (
            DOCKER_HUB
            if key == DOCKER_HUB_AUTH_KEY
            else urllib.parse.urlparse(key if "//" in key else f"//{key}").netloc
        )
        found[host] = (user, password)
    return found


class RegistryClient:
    def __init__(
        self,
        mirrors: dict[str, str] | None = None,
        credentials: dict[str, tuple[str, str]] | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ):
        self._mirrors = {k: v.rstrip("/") for k, v in (mirrors or {}).items()}
        self._credentials = credentials or {}
        self._timeout = timeout

    def base_url(self, registry: str) -> str:
        if registry in self._mirrors:
            return self._mirrors[registry]
        return DOCKER_HUB_API if registry == DOCKER_HUB else f"https://{registry}"

    def exists(self, reference: str) -> Answer:
        """Is `reference` in its registry? Raises RegistryUnreachable."""
        image = ImageName.parse(reference)
        base = self.base_url(image.registry)
        url = f"{base}/v2/{image.repository}/manifests/{urllib.parse.quote(image.tag)}"
        status, challenge, digest = self._head(image.registry, url, None)
        if status == 401 and challenge:
            authorization = self._authorize(image, challenge)
            if authorization is not None:
                status, _, digest = self._head(image.registry, url, authorization)
        if 200 <= status < 300:
            return Answer("found", image.registry, base, status, digest or None)
        if status == 404:
            return Answer("missing", image.registry, base, status)
        if status in (401, 403):
            return Answer("denied", image.registry, base, status)
        raise RegistryUnreachable(image.registry, base, f"HTTP {status} to HEAD {url}")

    # -- HTTP ------------------------------------------------------------------------------
    def _head(self, registry: str, url: str, authorization: str | None) -> tuple[int, str, str]:
        """(status, the 401's challenge, the manifest's digest)."""
        headers = {"Accept": MANIFEST_TYPES}
        if authorization:
            headers["Authorization"] = authorization
        request = urllib.request.Request(url, method="HEAD", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return int(response.status), "", response.headers.get("Docker-Content-Digest", "")
        except urllib.error.HTTPError as exc:
            if exc.code in (429,) or exc.code >= 500:
                raise RegistryUnreachable(registry, url, f"HTTP {exc.code}") from None
            return exc.code, exc.headers.get("WWW-Authenticate", ""), ""
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RegistryUnreachable(registry, url, _reason(exc)) from None

    def _authorize(self, image: ImageName, challenge: str) -> str | None:
        scheme, _, params_text = challenge.strip().partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        credentials = self._credentials.get(image.registry)
        basic = (
            "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
            if credentials
            else None
        )
        if scheme.lower() == "basic":
            return basic
        if scheme.lower() != "bearer" or "realm" not in params:
            return None
        query = {"scope": f"repository:{image.repository}:pull"}
        if "service" in params:
            query["service"] = params["service"]
        url = f"{params['realm']}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers={"Authorization": basic} if basic else {})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                return None  # the HEAD answers 401 again: denied
            raise RegistryUnreachable(image.registry, params["realm"], f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RegistryUnreachable(image.registry, params["realm"], _reason(exc)) from None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        return f"Bearer {token}" if token else None


def client_for(mirrors: dict[str, str], credentials_file: str | None) -> RegistryClient:
    """The client `image_registry` describes. Raises ValueError for a credentials file that
    cannot be read."""
    return RegistryClient(mirrors, read_credentials(credentials_file))


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "reason", None)
    cause = inner if isinstance(inner, BaseException) else exc
    text = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
    return f"{type(cause).__name__}: {text}"
