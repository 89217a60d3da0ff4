"""The declared state of one environment: what the bootstrap provisions and the drift check keeps.

Frozen pydantic models with unknown keys forbidden, so a typo in an environment file is an
error instead of a silently ignored setting. No model here ever holds a secret value: the DB
passwords are referenced by where they live (a Secrets Manager id, a Kubernetes Secret name).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from base.model import FrozenModel
from declared_state import versions
from declared_state.archival import ClusterArchival, NamespaceArchival, namespace_problems
from declared_state.dynamic_config import DynamicConfig, constraint_problems

# RFC 1123 label, as Kubernetes requires for namespace names.
_K8S_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Temporal namespace names: letters, digits, '-', '_', '.', starting with a letter or digit.
_TEMPORAL_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")
# A chart version as helm and the version tables spell it (#20.8: '0.52' planned a hop).
_CHART_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
# AWS: 1-63 letters, digits and '-', a letter first, no '--', no '-' last.
_RDS_INSTANCE_ID = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$")
# One DNS label: ASCII letters, digits and '-', not at either end.
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_K8S_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s)")
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# An environment's name is its file name and part of workflow ids and Kubernetes names.
_ENVIRONMENT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# The server caps namespace retention at 100 years (measured: registering or updating with
# more stores 876000h), so a larger declaration would differ from the live value forever.
MAX_RETENTION = timedelta(hours=876000)
# Go's time.Duration (how the server reads maxConnLifetime) ends at about 292 years.
_GO_MAX_DURATION = timedelta(microseconds=(2**63 - 1) // 1000)


def environment_name_problem(name: str) -> str | None:
    """Why `name` cannot be an environment's name, or None when it can."""
    if _ENVIRONMENT_NAME.match(name):
        return None
    return (
        f"{name!r} is not an environment name: lowercase letters, digits and '-', starting "
        "and ending with a letter or digit, at most 63 characters (the file <name>.yaml in "
        "the environments folder; no paths)"
    )


def parse_duration(value: Any) -> timedelta:
    """Accept '168h', '7d', '168h0m0s', '90m' (Go/Temporal style), seconds, or a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected a duration such as '168h', '7d' or '1h30m'")
    if isinstance(value, int | float):
        return _seconds(value, value)
    text = value.strip()
    if text.isdigit():
        return _seconds(int(text), value)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{value!r} is not a duration; use e.g. '168h', '7d' or '1h30m'")
    return _seconds(total, value)


def _seconds(seconds: float, written: Any) -> timedelta:
    if not 0 <= seconds < 10**15:  # negative, NaN, infinite or beyond any real setting
        raise ValueError(f"{written!r} is not a duration; use e.g. '168h', '7d' or '1h30m'")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """timedelta -> '168h0m0s', the form the temporal CLI prints."""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]


def go_duration(value: Any) -> str:
    """A duration in any form `parse_duration` takes, as the shortest string Go's
    time.ParseDuration reads back ('1h', '1h30m', '45s'): the server parses it, so it must be
    whole seconds, above zero and within Go's range."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("expected a duration such as '1h', '30m' or '1h30m'")
    exact = parse_duration(value).total_seconds()
    seconds = round(exact)
    if seconds < 1 or abs(exact - seconds) > 1e-6:
        raise ValueError(f"{value!r} must be a whole number of seconds, at least 1s")
    if timedelta(seconds=seconds) > _GO_MAX_DURATION:
        raise ValueError(f"{value!r} is longer than the server can read (about 292 years)")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


GoDuration = Annotated[str, BeforeValidator(go_duration)]


def whole_port(value: Any) -> Any:
    """A port is a whole number; YAML's `true` (an int to Python) or 3306.0 is not one. Text
    of digits passes: an interpolated `${PORT}` is text."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(
            f"Input should be a valid integer from 1 to 65535 (a whole number), not {value!r}"
        )
    if isinstance(value, str) and not (value.strip().isascii() and value.strip().isdigit()):
        raise ValueError(f"Input should be a valid integer from 1 to 65535, not {value!r}")
    return value


Port = Annotated[int, BeforeValidator(whole_port), Field(ge=1, le=65535)]
"""A duration the chart passes to the server verbatim, kept in Go's spelling."""


class ChartSpec(FrozenModel):
    """Which Temporal Helm chart to install."""

    repository: str = "https://go.temporal.io/helm-charts"
    name: str = "temporal"
    version: str = "0.52.0"
    server_version: str | None = Field(
        default=None,
        description="Server version the chart deploys; derived from the version table when omitted.",
    )
    local_path: str | None = Field(
        default=None,
        description="A chart directory or .tgz to install instead of the repository (offline, tests).",
    )

    @field_validator("version")
    @classmethod
    def _major_minor_patch(cls, value: str) -> str:
        if not _CHART_VERSION.match(value):
            raise ValueError(
                f"{value!r} is not a chart version: MAJOR.MINOR.PATCH, e.g. 0.52.0 "
                f"(supported: {versions.supported_chart_versions()})"
            )
        return value

    @model_validator(mode="after")
    def _known_versions(self) -> ChartSpec:
        try:
            known = versions.server_version_for_chart(self.version)
        except ValueError as exc:
            raise ValueError(f"version: {exc}") from None
        if self.server_version is not None:
            try:
                versions.parse_version(self.server_version)
            except ValueError as exc:
                raise ValueError(f"server_version: {exc}") from None
        if known is None and (self.server_version is None or self.local_path is None):
            # A local copy's Chart.yaml names its server (the loader reads it); a chart from
            # a repository must be one the tables know, or its image tag would be a guess.
            raise ValueError(
                f"version: chart {self.version} is not in the supported table "
                f"({versions.supported_chart_versions()}); use one of those, or a local copy "
                "of the chart (chart.local_path) whose Chart.yaml names its server version"
            )
        if known is not None and self.server_version not in (None, known):
            raise ValueError(
                f"server_version: chart {self.version} deploys server {known}, "
                f"not {self.server_version}"
            )
        server = self.target_server_version
        broken = versions.broken_release(server)
        if broken is not None:
            raise ValueError(f"version: chart {self.version}: {broken}")
        if versions.schema_versions_for_server(server) is None:
            raise ValueError(
                f"server_version: no MySQL schema versions are known for Temporal server "
                f"{server} (known: {versions.supported_server_versions()})"
            )
        return self

    @property
    def target_server_version(self) -> str:
        """The server version this chart deploys (and the image tag it is pinned to)."""
        found = self.server_version or versions.server_version_for_chart(self.version)
        assert found is not None  # guaranteed by the validator
        return found


# An image repository as Docker references spell it: an optional registry host (with a dot
# or a port, or `localhost`), then lowercase path components.
_IMAGE_REPOSITORY = re.compile(
    r"^(?:(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+|localhost|[a-zA-Z0-9-]+)(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _image_ref(value: Any) -> Any:
    """`repo`, `repo:tag` or `:tag` as a string, or the mapping form."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if "@" in text:
        raise ValueError(
            f"{value!r}: digests are not supported; give a repository and/or a tag "
            "(registry.example.com/temporalio/admin-tools:1.29.1-custom)"
        )
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        return {"repository": text[:colon] or None, "tag": text[colon + 1 :]}
    return {"repository": text or None}


class ImageOverride(FrozenModel):
    """One component's image, overriding what the chart pins: a repository (a private
    registry or mirror) and/or a tag. Written as a mapping or as `repo`, `repo:tag` or
    `:tag`."""

    repository: str | None = None
    tag: str | None = None

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        if value is not None and not _IMAGE_REPOSITORY.match(value):
            raise ValueError(
                f"{value!r} is not an image repository: [registry[:port]/]path with lowercase "
                "letters, digits and . _ - (e.g. registry.example.com/temporalio/admin-tools)"
            )
        return value

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is not None and not _IMAGE_TAG.match(value):
            raise ValueError(
                f"{value!r} is not an image tag: letters, digits, '_', '.', '-', not starting "
                "with '.' or '-', at most 128 characters"
            )
        return value


ImageOverrideField = Annotated[ImageOverride, BeforeValidator(_image_ref)]


class Image(FrozenModel):
    """An image a pod pulls: repository and tag."""

    repository: str
    tag: str

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    def __str__(self) -> str:
        return self.reference


class ImageSet(FrozenModel):
    """The images an install or an upgrade hop runs; None: the chart pins an image the
    tables do not know (a local chart outside them), so its own default applies."""

    server: Image | None
    admin_tools: Image | None
    web: Image | None

    def components(self) -> tuple[tuple[str, Image | None], ...]:
        return (("server", self.server), ("admin_tools", self.admin_tools), ("web", self.web))


class ImagePin(StrEnum):
    """How the release names its images (#23.5): `tag` as the chart does, or `digest`: each
    tag resolved to its manifest digest when the chart is installed, deployed as
    `repository:tag@sha256:...` (the runtime pulls by the digest; the tag is for people), so
    a re-pushed tag changes nothing that runs and the drift check reports that it moved."""

    TAG = "tag"
    DIGEST = "digest"


class ImagesSpec(FrozenModel):
    """Overrides of the images the chart pins, per component (a private registry or a
    mirror). A repository applies to every chart an install or upgrade runs; a tag only to
    the declared chart (an upgrade's earlier hops run the tags their own charts pin, or the
    hop would deploy a release it did not plan). What is not overridden is the chart's."""

    server: ImageOverrideField = ImageOverride()
    admin_tools: ImageOverrideField = ImageOverride()
    web: ImageOverrideField = ImageOverride()
    pin: ImagePin = Field(
        default=ImagePin.TAG,
        description="tag (as the chart pins) or digest: deploy each image by the digest its "
        "tag names at install time; the drift check reports a tag that moved.",
    )

    def resolve(self, chart: ChartSpec, *, declared: bool = True) -> ImageSet:
        """The images `chart` runs with these overrides (tags too when `declared`)."""
        pinned = versions.chart_images(chart.version)
        tags: dict[str, str | None] = {
            "server": pinned.server if pinned else None,
            "admin_tools": pinned.admin_tools if pinned else None,
            "web": pinned.web if pinned else None,
        }
        if chart.server_version is not None and (pinned is None or declared):
            # The operator's (or the local chart's Chart.yaml) word on which server runs.
            tags["server"] = chart.server_version
        found: dict[str, Image | None] = {}
        for name, override in (
            ("server", self.server),
            ("admin_tools", self.admin_tools),
            ("web", self.web),
        ):
            tag = (override.tag if declared else None) or tags[name]
            repository = override.repository or versions.IMAGE_REPOSITORIES[name]
            found[name] = Image(repository=repository, tag=tag) if tag else None
        return ImageSet(**found)

    @classmethod
    def exactly(cls, images: ImageSet, pin: ImagePin = ImagePin.TAG) -> ImagesSpec:
        """Overrides that pin every known image of `images` (an upgrade hop's)."""

        def one(image: Image | None) -> ImageOverride:
            return (
                ImageOverride(repository=image.repository, tag=image.tag)
                if image
                else ImageOverride()
            )

        return cls(
            server=one(images.server),
            admin_tools=one(images.admin_tools),
            web=one(images.web),
            pin=pin,
        )


class ImageRegistrySpec(FrozenModel):
    """How the image preflight reaches the registries (adapters/registry.py).

    `mirrors` maps a registry host (`docker.io`, `registry.example.com`) to the base URL the
    worker asks instead (a pull-through mirror, an air-gapped copy). `credentials_file` is a
    Docker `config.json` on the worker (its `auths`), read there: no credential enters the
    workflow. `strict`: an unreachable registry fails the preflight instead of warning."""

    mirrors: dict[str, str] = Field(default_factory=dict)
    credentials_file: str | None = None
    strict: bool = False
    preflight: bool = Field(default=True, description="Check that every image exists first.")

    @field_validator("mirrors")
    @classmethod
    def _urls(cls, value: dict[str, str]) -> dict[str, str]:
        for host, url in value.items():
            if not re.match(r"^https?://[^/\s]+/?$", url):
                raise ValueError(
                    f"{host}: {url!r} is not a registry base URL (http(s)://host[:port])"
                )
        return value


class KubernetesTarget(FrozenModel):
    """Where the release goes: kubeconfig context (None = current) and namespace."""

    context: str | None = None
    namespace: str
    release: str = "temporal"

    @field_validator("namespace", "release")
    @classmethod
    def _rfc1123(cls, value: str) -> str:
        if len(value) > 63 or not _K8S_NAMESPACE.match(value):
            raise ValueError(
                f"{value!r} is not a valid Kubernetes name: lowercase letters, digits and '-', "
                "starting and ending with a letter or digit, at most 63 characters"
            )
        return value


class RdsInstance(FrozenModel):
    """The RDS MySQL instance both Temporal stores live on."""

    instance_id: str
    region: str
    endpoint: str = Field(description="Host name the server connects to (the RDS endpoint).")
    port: Port = 3306
    engine: Literal["mysql"] = "mysql"

    @field_validator("instance_id")
    @classmethod
    def _instance_id(cls, value: str) -> str:
        if not _RDS_INSTANCE_ID.match(value):
            raise ValueError(
                f"{value!r} is not an RDS instance identifier: 1 to 63 ASCII letters, digits "
                "and '-', starting with a letter, not ending with '-', no '--'"
            )
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            pass
        labels = value.split(".")
        if len(value) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
            raise ValueError(
                f"{value!r} is not a host name: ASCII letters, digits and '-' in dot-separated "
                "labels (each 1 to 63 long, no '-' at either end), or an IP address"
            )
        return value


class AwsSecretsManagerPasswords(FrozenModel):
    """The DB passwords are JSON keys of an AWS Secrets Manager secret."""

    kind: Literal["aws_secrets_manager"]
    secret_id: str
    region: str | None = None
    default_store_key: str = "password"
    visibility_store_key: str = "visibility_password"


class ExistingKubernetesSecret(FrozenModel):
    """The Kubernetes Secret is managed elsewhere; the bootstrap only checks it."""

    kind: Literal["existing_kubernetes_secret"]


PasswordSource = Annotated[
    AwsSecretsManagerPasswords | ExistingKubernetesSecret, Field(discriminator="kind")
]


class KubernetesDbSecret(FrozenModel):
    """The Secret the chart reads both store passwords from."""

    name: str = "temporal-db-secret"
    default_store_key: str = "password"
    visibility_store_key: str = "visibility-password"

    @model_validator(mode="after")
    def _distinct_keys(self) -> KubernetesDbSecret:
        if self.default_store_key == self.visibility_store_key:
            raise ValueError(
                "default_store_key and visibility_store_key must differ, or the visibility "
                "store would silently read the default store's password"
            )
        return self


class DatabaseSpec(FrozenModel):
    """The two Temporal databases, the DB user and where the passwords come from."""

    default_store: str = "temporal"
    visibility_store: str = "temporal_visibility"
    user: str = "temporal_app"
    max_conns: int = Field(default=20, ge=1)
    max_idle_conns: int = Field(
        default=20,
        ge=0,
        description="Idle connections kept per store (charts 0.63-0.74 default to 20, the 1.x "
        "charts to nothing: set explicitly so the layout change keeps it).",
    )
    max_conn_lifetime: GoDuration = "1h"
    password_source: PasswordSource
    kubernetes_secret: KubernetesDbSecret = KubernetesDbSecret()
    tls_server_name: str | None = Field(
        default=None, description="Name to verify on the DB certificate; default: rds.endpoint."
    )


class CaBundleFromFile(FrozenModel):
    kind: Literal["file"]
    path: str


class CaBundleFromS3(FrozenModel):
    kind: Literal["s3"]
    bucket: str
    key: str
    region: str | None = None


CaBundleSource = Annotated[CaBundleFromFile | CaBundleFromS3, Field(discriminator="kind")]


class CaBundleSpec(FrozenModel):
    """The RDS CA bundle: where it comes from and how it reaches the server pods."""

    source: CaBundleSource
    config_map: str = "rds-ca-certs"
    key: str = "global-bundle.pem"
    mount_path: str = "/etc/temporal/global-bundle.pem"

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must be an absolute path inside the container")
        return value


class ResourceAmounts(FrozenModel):
    cpu: str | None = None
    memory: str | None = None

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value is not None and not _K8S_QUANTITY.match(str(value)):
            raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. '100m', '128Mi')")
        return value


class Resources(FrozenModel):
    limits: ResourceAmounts = ResourceAmounts()
    requests: ResourceAmounts = ResourceAmounts()


class ServiceSpec(FrozenModel):
    """Replicas and resources of one Temporal service."""

    replicas: int = Field(default=1, ge=1)
    resources: Resources = Resources()


class AdmintoolsSpec(FrozenModel):
    """The chart runs exactly one admintools pod; only its resources are configurable."""

    resources: Resources = Resources()


class ServicesSpec(FrozenModel):
    frontend: ServiceSpec = ServiceSpec()
    history: ServiceSpec = ServiceSpec()
    matching: ServiceSpec = ServiceSpec()
    worker: ServiceSpec = ServiceSpec()
    web: ServiceSpec = ServiceSpec()
    admintools: AdmintoolsSpec = AdmintoolsSpec()


class IngressAccess(FrozenModel):
    """Who may reach the Web UI: source CIDRs and/or an external auth endpoint (oauth2-proxy)."""

    allowed_cidrs: tuple[str, ...] = ()
    auth_url: str | None = None
    auth_signin: str | None = None

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR such as '10.0.0.0/8'") from None
        return value

    @property
    def restricted(self) -> bool:
        return bool(self.allowed_cidrs or self.auth_url)


class WebIngressSpec(FrozenModel):
    """nginx Ingress in front of the Web UI. It is never public unless `public: true` says so."""

    enabled: bool = True
    class_name: str = "nginx"
    host: str | None = None
    tls_secret: str | None = None
    proxy_body_size: str = "15m"
    access: IngressAccess = IngressAccess()
    public: bool = False

    @model_validator(mode="after")
    def _access_control(self) -> WebIngressSpec:
        if not self.enabled:
            return self
        if self.host is None:
            raise ValueError("host: required when the Web UI ingress is enabled")
        if not self.access.restricted and not self.public:
            raise ValueError(
                "access: the Web UI ingress has no access control; set access.allowed_cidrs "
                "and/or access.auth_url, or write `public: true` to expose it on purpose"
            )
        return self


class SearchAttributeType(StrEnum):
    """A custom search attribute's type, spelled as the temporal CLI spells it (`--type`)."""

    TEXT = "Text"
    KEYWORD = "Keyword"
    INT = "Int"
    DOUBLE = "Double"
    BOOL = "Bool"
    DATETIME = "Datetime"
    KEYWORD_LIST = "KeywordList"


def _search_attribute_type(value: Any) -> Any:
    if isinstance(value, str) and value not in SearchAttributeType._value2member_map_:
        allowed = ", ".join(t.value for t in SearchAttributeType)
        raise ValueError(f"{value!r} is not a search attribute type; allowed: {allowed}")
    return value


# What the server refuses as a custom search attribute's name (common/searchattribute/sadefs
# IsReserved in temporalio/temporal): the system attributes, the predefined ones, the internal
# field names, and anything starting with "Temporal".
_RESERVED_SEARCH_ATTRIBUTES = frozenset(
    {
        # system
        "WorkflowId", "RunId", "WorkflowType", "StartTime", "ExecutionTime", "CloseTime",
        "ExecutionStatus", "TaskQueue", "HistoryLength", "ExecutionDuration",
        "StateTransitionCount", "HistorySizeBytes", "ParentWorkflowId", "ParentRunId",
        "RootWorkflowId", "RootRunId",
        # predefined (those not starting with "Temporal")
        "BinaryChecksums", "BuildIds", "BatcherNamespace", "BatcherUser",
        # internal field names
        "NamespaceId", "Memo", "MemoEncoding", "VisibilityTaskKey",
    }
)  # fmt: skip
_RESERVED_SEARCH_ATTRIBUTE_PREFIX = "Temporal"
# SQL visibility (MySQL, what this tool deploys) keeps a namespace's custom search attributes
# in pre-allocated columns: 10 Keyword and 3 of every other type per namespace (sadefs
# defaultNumDBCustomSearchAttributes); the server refuses one more ("cannot have more than").
SQL_SEARCH_ATTRIBUTE_SLOTS = {
    t: (10 if t == SearchAttributeType.KEYWORD else 3) for t in SearchAttributeType
}
# Keys in a namespace's data this tool writes itself (the registration marker).
BOOTSTRAP_DATA_PREFIX = "temporal-bootstrap."
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def search_attribute_name_problem(name: str) -> str | None:
    """Why the server would refuse `name` as a custom search attribute, or None."""
    if not name or name != name.strip():
        return f"{name!r} is not a search attribute name: it is empty or starts or ends with spaces"
    if name in _RESERVED_SEARCH_ATTRIBUTES or name.startswith(_RESERVED_SEARCH_ATTRIBUTE_PREFIX):
        return (
            f"{name!r} is reserved by the server (its own search attributes and any name "
            f"starting with {_RESERVED_SEARCH_ATTRIBUTE_PREFIX!r}); choose another name"
        )
    return None


# A Secret's name (DNS subdomain) and a key in it, as the API server validates them.
_K8S_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
# The Temporal UI server's sign-in callback route (server/route/auth.go, UI 2.31 to 2.52:
# group /auth, GET /sso/callback and the v1 spelling /sso_callback), under any base path.
UI_CALLBACK_PATHS = ("/auth/sso/callback", "/auth/sso_callback")
# Hosts an http:// sign-in URL may name: this machine only (a local identity provider).
_LOOPBACK_NAMES = ("localhost",)


class SecretKeyRef(FrozenModel):
    """A key of a Kubernetes Secret in the release's namespace. Only the pod reads it (as a
    `secretKeyRef`); this tool never sees the value."""

    name: str
    key: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _K8S_SUBDOMAIN.match(value):
            raise ValueError(
                f"{value!r} is not a Secret name: lowercase letters, digits, '-' and '.', "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _SECRET_KEY.match(value):
            raise ValueError(f"{value!r} is not a Secret key: letters, digits, '-', '_' and '.'")
        return value


def is_loopback_host(host: str) -> bool:
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url(value: str) -> SplitResult:
    """`value` split, or ValueError when it is no absolute http(s) URL with a host."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            f"{value!r} is not an absolute http(s) URL with a host (no query or fragment)"
        )
    return parts


class WebUiAuth(StrEnum):
    """How people sign in to the Web UI (the Temporal UI server's own sign-in)."""

    NONE = "none"
    """No sign-in: whoever reaches the UI (see web_ingress.access) uses it."""
    OIDC = "oidc"
    """OpenID Connect against an identity provider (the UI's TEMPORAL_AUTH_* settings)."""


class OidcSignIn(FrozenModel):
    """The Web UI's OIDC sign-in. The client secret is a reference to a Kubernetes Secret
    key, read by the UI pod only: environment files travel in workflow inputs and history."""

    provider_url: str = Field(
        description="The provider's issuer URL (its /.well-known/openid-configuration is read "
        "from there, and the issuer it names must be this URL exactly)."
    )
    client_id: str
    client_secret_ref: SecretKeyRef
    callback_url: str | None = Field(
        default=None,
        description="Where the provider sends the browser back; default "
        "https://<web_ingress.host>/auth/sso/callback.",
    )
    scopes: tuple[str, ...] = ("openid", "profile", "email")

    @model_validator(mode="before")
    @classmethod
    def _never_the_secret_itself(cls, data: Any) -> Any:
        if isinstance(data, dict) and "client_secret" in data:
            raise ValueError(
                "client_secret: never the secret itself (environment files travel in workflow "
                "inputs and history); name the Kubernetes Secret key that holds it: "
                "client_secret_ref: {name: <secret>, key: <key>}"
            )
        return data

    @field_validator("provider_url", "callback_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None:
            _url(value)
        return value

    @field_validator("callback_url")
    @classmethod
    def _the_ui_callback_route(cls, value: str | None) -> str | None:
        if value is not None and not _url(value).path.endswith(UI_CALLBACK_PATHS):
            raise ValueError(
                f"{value!r} is not the Web UI's sign-in callback: its path ends with "
                "/auth/sso/callback (e.g. https://temporal.example.com/auth/sso/callback)"
            )
        return value

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        if not value or value != value.strip() or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} is not a client id: non-empty, no spaces")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for scope in value:
            # The UI reads TEMPORAL_AUTH_SCOPES split at commas; OAuth scopes have no spaces.
            if not scope or any(c.isspace() or c == "," for c in scope):
                raise ValueError(f"{scope!r} is not a scope: non-empty, no spaces or commas")
        if "openid" not in value:
            raise ValueError(
                "must include 'openid' (without it the provider answers an OAuth request, "
                "not an OpenID Connect sign-in, and the UI gets no ID token to verify)"
            )
        return value


class WebUiSpec(FrozenModel):
    """Who can sign in to the Web UI (on top of who can reach it: web_ingress.access)."""

    auth: WebUiAuth = WebUiAuth.NONE
    oidc: OidcSignIn | None = None

    @model_validator(mode="after")
    def _oidc_when_oidc(self) -> WebUiSpec:
        if self.auth == WebUiAuth.OIDC and self.oidc is None:
            raise ValueError(
                "oidc: required with auth: oidc (provider_url, client_id, client_secret_ref "
                "{name, key}, and callback_url unless web_ingress.host gives it)"
            )
        if self.auth == WebUiAuth.NONE and self.oidc is not None:
            raise ValueError("auth: is none, so oidc would be ignored; write auth: oidc")
        return self


class TemporalNamespace(FrozenModel):
    """A Temporal namespace the bootstrap registers and keeps."""

    name: str
    retention: Duration = timedelta(hours=168)
    description: str = ""
    is_global: bool = Field(default=False, alias="global")
    search_attributes: dict[
        str, Annotated[SearchAttributeType, BeforeValidator(_search_attribute_type)]
    ] = Field(
        default_factory=dict,
        description="Custom search attributes: name -> type. Missing ones are added; a type "
        "change is refused (it needs a remove and a create by hand); live attributes not "
        "declared here are left alone.",
    )
    owner_email: str | None = Field(
        default=None, description="The namespace's owner email; None: not managed."
    )
    data: dict[str, str] = Field(
        default_factory=dict,
        description="Key/values set in the namespace's data; keys not declared are left alone.",
    )
    allow_deletion: bool = Field(
        default=False,
        description="Remove the namespace's live custom search attributes that are not "
        "declared in `search_attributes` (false: they are left alone and not reported).",
    )
    archival: NamespaceArchival | None = Field(
        default=None,
        description="History and visibility archival (state and URI); None, or a kind left "
        "out: not managed. See declared_state/archival.py.",
    )

    # merged with FrozenModel's frozen/forbid config
    model_config = ConfigDict(populate_by_name=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _TEMPORAL_NAMESPACE.match(value):
            raise ValueError(
                f"{value!r} is not a valid Temporal namespace name: 2-255 characters of letters, "
                "digits, '-', '_' or '.', starting with a letter or digit"
            )
        return value

    @field_validator("search_attributes")
    @classmethod
    def _search_attributes(
        cls, value: dict[str, SearchAttributeType]
    ) -> dict[str, SearchAttributeType]:
        for name in value:
            if problem := search_attribute_name_problem(name):
                raise ValueError(problem)
        for kind, slots in SQL_SEARCH_ATTRIBUTE_SLOTS.items():
            declared = sorted(n for n, t in value.items() if t == kind)
            if len(declared) > slots:
                raise ValueError(
                    f"{len(declared)} {kind.value} attributes declared ({', '.join(declared)}); "
                    f"SQL visibility (MySQL) holds at most {slots} {kind.value} attributes per "
                    "namespace"
                )
        return value

    @field_validator("owner_email")
    @classmethod
    def _owner_email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address (name@example.com)")
        return value

    @field_validator("data")
    @classmethod
    def _data_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key.strip():
                raise ValueError("a data key is empty")
            if key.startswith(BOOTSTRAP_DATA_PREFIX):
                raise ValueError(
                    f"{key!r}: keys starting with {BOOTSTRAP_DATA_PREFIX!r} are written by "
                    "temporal-bootstrap itself; choose another key"
                )
        return value

    @model_validator(mode="after")
    def _retention_bounds(self) -> TemporalNamespace:
        minimum = timedelta(hours=24) if self.is_global else timedelta(hours=1)
        if self.retention < minimum:
            kind = "global" if self.is_global else "local"
            raise ValueError(
                f"retention: {format_duration(self.retention)} is below the server's minimum of "
                f"{format_duration(minimum)} for a {kind} namespace"
            )
        if self.retention > MAX_RETENTION:
            raise ValueError(
                f"retention: {format_duration(self.retention)} is above the server's maximum of "
                f"{format_duration(MAX_RETENTION)} (100 years); the server would store the "
                "maximum and the drift check would report the difference forever"
            )
        return self


class FrontendTls(FrozenModel):
    enabled: bool = False
    server_name: str | None = None
    ca_file: str | None = None


class FrontendConnect(StrEnum):
    """How the worker reaches the new cluster's frontend."""

    PORT_FORWARD = "port-forward"
    """Through the Kubernetes API server's port-forward to a ready pod behind the frontend
    Service, as `kubectl port-forward svc/<release>-frontend` does (a worker outside the
    cluster: a laptop, CI)."""
    DIRECT = "direct"
    """Dial `address` (default: the Service's in-cluster DNS name; a worker in the cluster)."""


class FrontendSpec(FrozenModel):
    """How the bootstrap reaches the new cluster's frontend.

    `connect` unset: decided where the worker runs, port-forward outside a cluster and the
    in-cluster DNS name inside one (see adapters/temporal_target.py). An `address` means
    `direct`.
    """

    connect: FrontendConnect | None = None
    address: str | None = None
    service: str | None = Field(
        default=None, description="The frontend Service (port-forward); default <release>-frontend."
    )
    port: Port = Field(default=7233, description="The Service's gRPC port.")
    tls: FrontendTls = FrontendTls()

    @model_validator(mode="after")
    def _address_means_direct(self) -> FrontendSpec:
        if self.connect == FrontendConnect.PORT_FORWARD and self.address:
            raise ValueError(
                "address: only used with connect: direct; port-forward reaches the Service "
                "(service, port) through the Kubernetes API instead. Remove one of them."
            )
        return self


class DriftPolicy(StrEnum):
    REPORT = "report"
    REMEDIATE = "remediate"
    ASK = "ask"


# The Kubernetes kinds the live check compares (what a chart renders), and the top-level
# fields of each it compares: `metadata` only through its `labels` and `annotations`.
_WORKLOAD = ("spec",)
COMPARED_FIELDS: dict[str, tuple[str, ...]] = {
    "ConfigMap": ("data", "binaryData", "immutable"),
    "Secret": ("data", "stringData", "type", "immutable"),
    "Service": _WORKLOAD,
    "ServiceAccount": ("secrets", "imagePullSecrets", "automountServiceAccountToken"),
    "Deployment": _WORKLOAD,
    "StatefulSet": _WORKLOAD,
    "DaemonSet": _WORKLOAD,
    "Job": _WORKLOAD,
    "CronJob": _WORKLOAD,
    "Ingress": _WORKLOAD,
    "NetworkPolicy": _WORKLOAD,
    "PodDisruptionBudget": _WORKLOAD,
    "HorizontalPodAutoscaler": _WORKLOAD,
    "PersistentVolumeClaim": _WORKLOAD,
    "Role": ("rules",),
    "ClusterRole": ("rules", "aggregationRule"),
    "RoleBinding": ("subjects", "roleRef"),
    "ClusterRoleBinding": ("subjects", "roleRef"),
    "ServiceMonitor": _WORKLOAD,
}
COMPARED_METADATA = ("labels", "annotations")
_POINTER_ESCAPE = re.compile(r"~(?![01])")


def pointer_segments(pointer: str) -> list[str]:
    """The unescaped segments of a JSON pointer (RFC 6901); '' is the whole document."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(
            f"{pointer!r} is not a JSON pointer: it starts with '/' (e.g. /spec/replicas)"
        )
    if _POINTER_ESCAPE.search(pointer):
        raise ValueError(f"{pointer!r}: '~' must be written ~0, and '/' inside a key ~1")
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


class IgnoreRule(FrozenModel):
    """A field of chart-owned objects that another controller owns (an HPA's replicas, a
    mesh injector's annotations): differences there are counted, not shown or repaired."""

    kind: str
    name: str = Field(default="*", description="Object name; a glob (`*`, `temporal-*`).")
    path: str = Field(
        description="JSON pointer (RFC 6901) of the field or subtree, e.g. /spec/replicas; a "
        "segment `*` matches any one key or list index."
    )

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in COMPARED_FIELDS:
            raise ValueError(
                f"{value!r} is not a kind the drift check compares; one of: "
                f"{', '.join(sorted(COMPARED_FIELDS))}"
            )
        return value

    @model_validator(mode="after")
    def _known_path(self) -> IgnoreRule:
        try:
            parts = pointer_segments(self.path)
        except ValueError as exc:
            raise ValueError(f"path: {exc}") from None
        fields = COMPARED_FIELDS.get(self.kind, ())
        allowed = [f"/{f}" for f in fields] + [f"/metadata/{m}" for m in COMPARED_METADATA]
        top = parts[:1]
        known = not parts or (
            (top[0] in fields and all(parts))
            or (top == ["metadata"] and parts[1:2] and parts[1] in COMPARED_METADATA)
        )
        if not known or "" in parts:
            raise ValueError(
                f"path: {self.path!r} is not a field the drift check compares for "
                f"{self.kind}; it starts with {', '.join(allowed)} (or is '' for whole objects)"
            )
        return self

    def matches(self, kind: str, name: str, path: str) -> bool:
        """Does this rule cover a difference of object `kind`/`name` at JSON pointer `path`
        (the field itself or anything under it)?"""
        if kind != self.kind or not fnmatch.fnmatchcase(name, self.name):
            return False
        mine, theirs = pointer_segments(self.path), pointer_segments(path)
        return len(theirs) >= len(mine) and all(
            m in ("*", t) for m, t in zip(mine, theirs, strict=False)
        )


class DriftCheckSpec(FrozenModel):
    interval: Duration = timedelta(hours=1)
    policy: DriftPolicy = DriftPolicy.REPORT
    ignore: tuple[IgnoreRule, ...] = ()
    """Fields the check counts but does not show or repair (see IgnoreRule)."""

    @field_validator("interval")
    @classmethod
    def _at_least_a_minute(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("must be at least 1m")
        return value


class UpgradeSpec(FrozenModel):
    """How `python starter.py upgrade ENV` moves the cluster between releases."""

    soak: Duration = Field(
        default=timedelta(minutes=5),
        description="How long health must stay SERVING after each hop before the next one.",
    )

    @field_validator("soak")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value


# Every heartbeating activity heartbeats at least every 5 s while it waits (install_chart
# while helm runs, the polls of the others) and the SDK sends them at most every 80 % of the
# timeout: below 10 s a busy worker's live attempt would be taken for a dead one.
MIN_HEARTBEAT_TIMEOUT = timedelta(seconds=10)


class StepTimeouts(FrozenModel):
    """How the steps' activities are timed (the deadlines of the steps themselves are the
    run input's `StepDeadlines`)."""

    heartbeat: Duration = Field(
        default=timedelta(seconds=30),
        description="How long a step that waits (install_chart, wait_frontend_healthy, "
        "register_namespaces, update_schema, snapshot_database, soak) may go without a "
        "heartbeat before its attempt is taken for lost (its worker died) and the step is "
        "retried on another worker; also how old a release left pending by a dead helm must "
        "be before install_chart recovers it.",
    )

    @field_validator("heartbeat")
    @classmethod
    def _above_the_heartbeat_interval(cls, value: timedelta) -> timedelta:
        if value < MIN_HEARTBEAT_TIMEOUT:
            raise ValueError(
                "must be at least 10s: the activities heartbeat every few seconds, and the "
                "SDK sends them at most every 80% of this timeout"
            )
        return value


class NotifyEvent(StrEnum):
    """What a webhook is told about (declared_state `notifications.webhooks[*].events`)."""

    WAITING = "waiting"
    """A run waits for an operator (a failed step, the approval gate, a drift check that asks)."""
    FAILED = "failed"
    """A run ended failed: aborted, a drift check that could not check or whose repair failed."""
    DRIFT_FOUND = "drift_found"
    DRIFT_REPAIRED = "drift_repaired"


_ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Webhook(FrozenModel):
    """One webhook that receives Slack-compatible JSON (`{"text": ...}` plus fields).

    Its URL is a secret (whoever has it can post): the declaration names where the worker
    reads it, an environment variable of the worker (`url_from_env`) or a file in its pod
    (`url_from_file`, e.g. a mounted Kubernetes Secret key), never the URL itself, so it
    never enters a workflow's input or history."""

    name: str = Field(min_length=1, max_length=63, description="Shown in logs and results.")
    url_from_env: str | None = None
    url_from_file: str | None = None
    events: tuple[NotifyEvent, ...] = tuple(NotifyEvent)

    @model_validator(mode="before")
    @classmethod
    def _no_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and "url" in data:
            raise ValueError(
                "url: a webhook URL is a secret and never goes into an environment file; name "
                "the worker's environment variable that holds it (url_from_env: NAME) or a "
                "file (url_from_file: /path, e.g. a mounted Secret key)"
            )
        return data

    @field_validator("url_from_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_VAR_NAME.match(value):
            raise ValueError(
                f"{value!r} is not an environment variable name (letters, digits and '_', "
                "not starting with a digit)"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Webhook:
        if (self.url_from_env is None) == (self.url_from_file is None):
            raise ValueError("set exactly one of url_from_env and url_from_file")
        if not self.events:
            raise ValueError("events: name at least one of " + ", ".join(NotifyEvent))
        return self

    @property
    def source(self) -> str:
        """Where the URL is read, for messages (never the URL)."""
        if self.url_from_env is not None:
            return f"environment variable {self.url_from_env}"
        return f"file {self.url_from_file}"


class NotificationsSpec(FrozenModel):
    """Who is told when a run waits, fails, or a drift check finds or repairs drift."""

    webhooks: tuple[Webhook, ...] = ()

    @field_validator("webhooks")
    @classmethod
    def _unique(cls, value: tuple[Webhook, ...]) -> tuple[Webhook, ...]:
        names = [w.name for w in value]
        if len(set(names)) != len(names):
            raise ValueError(f"webhook names must be unique: {names}")
        return value

    def for_event(self, event: NotifyEvent) -> tuple[Webhook, ...]:
        return tuple(w for w in self.webhooks if event in w.events)


# A label key: an optional DNS-subdomain prefix and '/', then a name of up to 63 characters;
# a value: up to 63 characters, empty allowed (k8s.io/apimachinery validation).
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _label_problem(key: str, value: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _LABEL_PREFIX.match(prefix)):
        return f"label key {key!r}: its prefix must be a DNS subdomain (lowercase, '.', '-')"
    if not _LABEL_NAME.match(name):
        return (
            f"label key {key!r}: the name must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    if value and not _LABEL_NAME.match(value):
        return (
            f"label value {value!r} (key {key!r}): at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def _network(value: str | None) -> str | None:
    """A CIDR in the form the API server keeps (`10.1.2.3/8` -> `10.0.0.0/8`), so the drift
    check compares like with like."""
    if value is None:
        return value
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR such as '10.0.0.0/8'") from None


class PolicyPeer(FrozenModel):
    """Who a NetworkPolicy lets in: pods chosen by `namespace_selector` and/or `pod_selector`
    (matchLabels; an empty selector `{}` means all), or an IP block `cidr`. Exactly as a
    NetworkPolicyPeer: a peer is either selectors or a CIDR, never both."""

    namespace_selector: dict[str, str] | None = None
    pod_selector: dict[str, str] | None = None
    cidr: str | None = None

    @field_validator("namespace_selector", "pod_selector")
    @classmethod
    def _labels(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, label in (value or {}).items():
            if problem := _label_problem(str(key), str(label)):
                raise ValueError(problem)
        return value

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        return _network(value)

    @model_validator(mode="after")
    def _one_kind(self) -> PolicyPeer:
        selectors = self.namespace_selector is not None or self.pod_selector is not None
        if selectors and self.cidr is not None:
            raise ValueError(
                "a peer is either selectors (namespace_selector, pod_selector) or a cidr, not "
                "both; write two peers"
            )
        if not selectors and self.cidr is None:
            raise ValueError("a peer needs namespace_selector, pod_selector or cidr")
        return self


class EgressTarget(FrozenModel):
    """An endpoint the servers call besides the database and DNS (archival, an S3 endpoint):
    NetworkPolicy selects by address, not host name, so it is a CIDR and its ports."""

    cidr: str
    ports: tuple[Port, ...] = (443,)

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        return str(_network(value))

    @field_validator("ports")
    @classmethod
    def _some_ports(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("at least one port")
        return value


BOOTSTRAP_WORKER = PolicyPeer(
    namespace_selector={"kubernetes.io/metadata.name": "temporal-bootstrap"},
    pod_selector={"app.kubernetes.io/name": "temporal-bootstrap"},
)
"""This tool's worker as deploy/ runs it (namespace temporal-bootstrap, its pod labels)."""
INGRESS_NGINX = PolicyPeer(namespace_selector={"kubernetes.io/metadata.name": "ingress-nginx"})


class NetworkPolicySpec(FrozenModel):
    """The NetworkPolicies the bootstrap keeps for the release's pods (#23.3; see
    declared_state/network_policies.py for the objects). Default deny, then: the frontend's
    gRPC port from `frontend_from` and `bootstrap_worker`; the Web UI from `web_from` (its
    ingress controller); the metrics port from `metrics_from`; the services' own ports among
    the release's pods; egress to DNS, the database (`database_cidr`, default: any address on
    the RDS port) and `egress_to`."""

    enabled: bool = True
    frontend_from: tuple[PolicyPeer, ...] = ()
    bootstrap_worker: tuple[PolicyPeer, ...] = (BOOTSTRAP_WORKER,)
    web_from: tuple[PolicyPeer, ...] = (INGRESS_NGINX,)
    metrics_from: tuple[PolicyPeer, ...] = ()
    database_cidr: str | None = Field(
        default=None,
        description="The database's addresses (its subnets); default: the RDS endpoint when "
        "it is an IP, else any address on the RDS port (a NetworkPolicy cannot name a host).",
    )
    egress_to: tuple[EgressTarget, ...] = ()

    @field_validator("database_cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        return _network(value)


class PodSecurityLevel(StrEnum):
    """The Pod Security Standard the release's namespace enforces (#23.1).

    The bootstrap labels the namespace `pod-security.kubernetes.io/{enforce,audit,warn}` with
    this level (and `-version: latest`); `none` leaves the namespace's labels alone (for a
    cluster whose platform team sets them). The chart's pods are hardened for `restricted`
    whatever the level."""

    RESTRICTED = "restricted"
    BASELINE = "baseline"
    NONE = "none"


class UndeclaredNamespaces(StrEnum):
    """What the drift check makes of a Temporal namespace on the cluster that no
    `temporal_namespaces` entry declares (#22.1). Nothing ever deletes one: a namespace holds
    workflows and their histories, and deleting it cannot be undone.

    The server's own namespaces are never "undeclared": `temporal-system` (every server
    creates it at start) and, on a `temporal server start-dev` server (SQLite), `default`,
    which the dev server creates on every start (activities/register_namespaces.py says
    why a `default` on a MySQL cluster is someone's)."""

    PROTECT = "protect"
    """Left alone and not drift: the drift check lists them as information."""
    REPORT = "report"
    """Each one is drift at `/temporal_namespaces/<name>` (exit 4) that `remediate` never
    repairs: the item names the two ways out (declare it, or delete it by hand)."""


class Environment(FrozenModel):
    """One environment's declared state, after layering base.yaml and <env>.yaml."""

    name: str = Field(description="The file name in the environments folder, without .yaml.")
    chart: ChartSpec = ChartSpec()
    kubernetes: KubernetesTarget
    rds: RdsInstance
    database: DatabaseSpec
    ca_bundle: CaBundleSpec
    services: ServicesSpec = ServicesSpec()
    web_ingress: WebIngressSpec = WebIngressSpec(enabled=False)
    web_ui: WebUiSpec = WebUiSpec()
    temporal_namespaces: tuple[TemporalNamespace, ...] = ()
    undeclared_namespaces: UndeclaredNamespaces = Field(
        default=UndeclaredNamespaces.PROTECT,
        description="`protect` (default): namespaces nobody declared are left alone and "
        "listed as information; `report`: each is drift the drift check reports (never "
        "deleted).",
    )
    frontend: FrontendSpec = FrontendSpec()
    approval_required: bool = False
    drift_check: DriftCheckSpec = DriftCheckSpec()
    notifications: NotificationsSpec = NotificationsSpec()
    upgrade: UpgradeSpec = UpgradeSpec()
    step_timeouts: StepTimeouts = StepTimeouts()
    images: ImagesSpec = ImagesSpec()
    image_registry: ImageRegistrySpec = ImageRegistrySpec()
    pod_security: PodSecurityLevel = Field(
        default=PodSecurityLevel.RESTRICTED,
        description="Pod Security level the namespace enforces: restricted, baseline or none.",
    )
    dynamic_config: DynamicConfig = Field(
        default_factory=dict,
        description="The server's dynamic config (key -> [{value, constraints}]); see "
        "declared_state/dynamic_config.py.",
    )
    network_policy: NetworkPolicySpec = NetworkPolicySpec()
    archival: ClusterArchival = Field(
        default_factory=ClusterArchival,
        description="What the cluster can archive (server.archival, "
        "server.namespaceDefaults.archival); see declared_state/archival.py.",
    )
    extra_values: dict[str, Any] = Field(
        default_factory=dict,
        description="Chart values the model does not cover; deep-merged last.",
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if problem := environment_name_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("temporal_namespaces")
    @classmethod
    def _unique_names(cls, value: tuple[TemporalNamespace, ...]) -> tuple[TemporalNamespace, ...]:
        seen: set[str] = set()
        for ns in value:
            if ns.name in seen:
                raise ValueError(f"namespace {ns.name!r} is declared more than once")
            seen.add(ns.name)
        return value

    @model_validator(mode="after")
    def _constraints_the_server_knows(self) -> Environment:
        server = versions.version_key(self.chart.target_server_version)
        if problems := constraint_problems(self.dynamic_config, server):
            raise ValueError(f"dynamic_config: {'; '.join(problems)}")
        return self

    @model_validator(mode="after")
    def _archival_the_cluster_applies(self) -> Environment:
        declared = [
            (f"temporal_namespaces[{i}]", ns.archival)
            for i, ns in enumerate(self.temporal_namespaces)
        ]
        if problems := namespace_problems(self.archival, declared):
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _sign_in_urls(self) -> Environment:
        oidc = self.web_ui.oidc
        if oidc is None:
            return self
        if oidc.callback_url is None and not (self.web_ingress.enabled and self.web_ingress.host):
            raise ValueError(
                "web_ui.oidc.callback_url: required without a Web UI ingress host: the URL "
                "the provider sends the browser back to, https://<UI host>/auth/sso/callback"
            )
        for key, url in (
            ("provider_url", oidc.provider_url),
            ("callback_url", self.ui_callback_url),
        ):
            parts = _url(url)
            if (
                parts.scheme != "https"
                and self.name != "local"
                and not is_loopback_host(parts.hostname or "")
            ):
                raise ValueError(
                    f"web_ui.oidc.{key}: {url!r} must be https: the sign-in's codes and tokens "
                    "pass through it (http only in the local environment or for a loopback host)"
                    + (
                        " (the callback comes from web_ingress, which has no tls_secret)"
                        if key == "callback_url" and oidc.callback_url is None
                        else ""
                    )
                )
        return self

    @property
    def ui_callback_url(self) -> str:
        """Where the identity provider sends the browser back after sign-in."""
        oidc = self.web_ui.oidc
        assert oidc is not None
        if oidc.callback_url:
            return oidc.callback_url
        scheme = "https" if self.web_ingress.tls_secret else "http"
        return f"{scheme}://{self.web_ingress.host}{UI_CALLBACK_PATHS[0]}"

    @property
    def frontend_service(self) -> str:
        """The chart's frontend Service (what port-forward resolves to a ready pod)."""
        return self.frontend.service or f"{self.kubernetes.release}-frontend"

    @property
    def frontend_address(self) -> str:
        """The address a direct connection dials; defaults to the frontend Service's
        in-cluster DNS name."""
        if self.frontend.address:
            return self.frontend.address
        k8s = self.kubernetes
        return f"{self.frontend_service}.{k8s.namespace}.svc.cluster.local:{self.frontend.port}"

    @property
    def schema_versions(self) -> versions.SchemaVersions:
        found = versions.schema_versions_for_server(self.chart.target_server_version)
        assert found is not None, "every server in the chart table has schema versions"
        return found

    @property
    def resolved_images(self) -> ImageSet:
        """The images this environment's chart runs, its overrides applied."""
        return self.images.resolve(self.chart)

    @property
    def db_tls_server_name(self) -> str:
        return self.database.tls_server_name or self.rds.endpoint
