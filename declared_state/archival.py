"""History and visibility archival (#22.1): the cluster side in the environment, the namespace
side in `temporal_namespaces[*].archival`, and the server rules both must follow.

What the server does (temporalio/temporal, unchanged from v1.25.2 to v1.31.2 but for license
headers; read at those tags):

- Cluster side, the static config (`common/config/config.go` `Archival`, `ArchivalNamespaceDefaults`;
  checked at start-up by `common/config/archival.go` `isArchivalConfigValid`): per kind
  (`history`, `visibility`) a `state` (`enabled`, `disabled`, `paused`), `enableRead` and a
  `provider` (`filestore`, `gstorage`, `s3store`, custom stores), plus
  `namespaceDefaults.archival.<kind>.{state, URI}`. An *enabled* kind needs a provider AND a
  namespace default URI; a *disabled* one must have neither, nor `enableRead`, nor an enabled
  namespace default. Anything else and the server does not start ("invalid history archival
  config"). The dynamic config keys `history.archivalState` / `system.visibilityArchivalState`
  can only turn an enabled kind off, never one on (`common/archiver/archival_metadata.go`
  `GetClusterState`: with the static state not enabled the dynamic one is not read).
- Namespace side (`service/frontend/namespace_handler.go`): RegisterNamespace and
  UpdateNamespace apply `history_archival_state/uri` and `visibility_archival_state/uri` ONLY
  when the cluster has that kind enabled (`ClusterConfiguredForArchival`); otherwise the
  fields are silently ignored (the namespace stays `disabled` with no URI, and the call
  succeeds). The transitions are `common/namespace/archival_config_state_machine.go`
  `GetNextState`: a namespace's URI, once set, never changes ("Cannot update existing
  archival URI", InvalidArgument); enabling without a URI takes the namespace's own URI if it
  has one, else the cluster's namespace default URI; disabling keeps the URI; a URI may be
  set while disabled (it is then reserved). RegisterNamespace without a state takes the
  cluster's namespace default state. Every new URI is validated by the provider of its
  scheme (`common/archiver/provider/provider.go`: `file` -> filestore, `gs` -> gstorage,
  `s3` -> s3store; no provider for the scheme: "unable to find archiver config for the given
  scheme"; another scheme: "unknown archiver scheme"): `s3store.SoftValidateURI` needs a
  bucket (the URI's host) and then the bucket must exist (HeadBucket, with the server pods'
  credentials); the prefix is the URI's path.
- The dev server (`temporal server start-dev`, temporalio/cli `internal/devserver/server.go`,
  v1.5.1 to v1.8.x) hard-codes both kinds `disabled` with no provider, so it ignores every
  archival field: it cannot enable archival at all.

What this tool configures: the `s3store` provider only (`s3://bucket/prefix` URIs). The
cluster runs on AWS (RDS), and S3 is the archive an AWS cluster can share between every
history pod (which writes) and frontend pod (which reads). `file://` would write into each
pod's own filesystem (read-only from server 1.30, and lost with the pod) and `gs://` needs a
Google credentials file mounted into the pods; both are refused with that reason. The S3
provider takes a region, an optional endpoint (a VPC endpoint, or an S3-compatible store)
and path-style addressing; its credentials are never values: the server's AWS SDK reads them
from the pods' environment (an IAM role for the service account, or the node's role), so no
key ever enters the environment file, the chart values or a workflow history.

This module checks, at `validate`, everything the server would refuse or ignore, with the key
named: an enabled kind without a default URI or without the S3 provider, a disabled kind with
a URI or `namespace_default: enabled` (the server would not start), a namespace that sets
archival of a kind the cluster does not enable (the server would ignore it, so the drift
check would report it forever), a URI whose scheme has no provider here, an S3 URI without a
valid bucket name, or with credentials, a port, a query or a fragment (the archiver reads only
the host and the path). Whether the bucket exists is the server's check, at registration.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from base.model import FrozenModel

ARCHIVAL_KINDS = ("history", "visibility")
S3_SCHEME = "s3"
# Why the other schemes the server knows are not configured by this tool.
_NOT_CONFIGURED = {
    "file": "file:// writes into each server pod's own filesystem (read-only from server 1.30, "
    "lost with the pod, not shared between history and frontend pods)",
    "gs": "gs:// needs a Google credentials file mounted into every server pod",
}
# S3 bucket names (AWS general purpose buckets): 3-63 lowercase letters, digits, '.' and '-',
# a letter or digit at both ends.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")


class ArchivalState(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


def s3_uri_problem(uri: str) -> str | None:
    """Why `uri` is no archival URI this tool can configure, or None."""
    parts = urlsplit(uri)
    if not parts.scheme:
        return f"{uri!r} is not an archival URI: write s3://<bucket>/<prefix>"
    if parts.scheme != S3_SCHEME:
        why = _NOT_CONFIGURED.get(parts.scheme, "the server has no archiver for that scheme")
        return (
            f"{uri!r}: scheme {parts.scheme!r} has no archival provider here ({why}); "
            "use s3://<bucket>/<prefix>"
        )
    if "@" in parts.netloc:
        # Not echoed: what precedes the @ may be a secret.
        return (
            f"s3://...@{parts.netloc.rpartition('@')[2]}{parts.path}: credentials do not "
            "belong in an archival URI; the server's S3 archiver uses the pods' AWS "
            "credentials (an IAM role)"
        )
    host = parts.netloc
    if ":" in host:
        return f"{uri!r}: no port in an S3 archival URI (the archiver reads only bucket and prefix)"
    if not _BUCKET.match(host) or ".." in host:
        return (
            f"{uri!r}: {host!r} is not an S3 bucket name (3-63 lowercase letters, digits, "
            "'.' and '-', a letter or digit at both ends)"
        )
    if parts.query or parts.fragment or uri.endswith(("?", "#")):
        return f"{uri!r}: no query or fragment in an archival URI (the archiver ignores them)"
    return None


def _uri(value: str | None) -> str | None:
    if value is not None and (problem := s3_uri_problem(value)):
        raise ValueError(problem)
    return value


class S3Provider(FrozenModel):
    """The server's `s3store` archiver. No credentials: the AWS SDK in the server pods reads
    them from the pods' environment (IAM role for the service account, or the node's role)."""

    region: str = Field(description="The bucket's AWS region, e.g. eu-west-1 (required).")
    endpoint: str | None = Field(
        default=None,
        description="Another S3 endpoint (a VPC endpoint, an S3-compatible store); "
        "None: the region's.",
    )
    force_path_style: bool = Field(
        default=False, description="Path-style addressing (S3-compatible stores need it)."
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        # The server refuses an empty region ("empty aws region") when it builds the archiver.
        if not _AWS_REGION.match(value):
            raise ValueError(f"{value!r} is not an AWS region (like eu-west-1)")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an endpoint URL (https://host[:port])")
        if parts.username or parts.password:
            raise ValueError(f"{value!r}: no credentials in the endpoint URL")
        return value


class ClusterArchivalKind(FrozenModel):
    """One kind of archival on the cluster (the server's static config)."""

    state: ArchivalState = ArchivalState.DISABLED
    enable_read: bool = Field(
        default=True,
        description="Let the frontend read archived data (rendered only while enabled).",
    )
    uri: str | None = Field(
        default=None,
        description="The namespace default URI (`namespaceDefaults.archival.<kind>.URI`): what "
        "a namespace enabling archival without its own URI archives to. Required when enabled.",
    )
    namespace_default: ArchivalState = Field(
        default=ArchivalState.DISABLED,
        description="The state of a namespace registered without one (a namespace that "
        "declares no archival of this kind).",
    )

    @field_validator("uri")
    @classmethod
    def _check_uri(cls, value: str | None) -> str | None:
        return _uri(value)

    @property
    def enabled(self) -> bool:
        return self.state == ArchivalState.ENABLED


class ClusterArchival(FrozenModel):
    """`archival:` of an environment: what the cluster can archive, and where."""

    history: ClusterArchivalKind = ClusterArchivalKind()
    visibility: ClusterArchivalKind = ClusterArchivalKind()
    s3store: S3Provider | None = Field(
        default=None, description="The S3 archiver's settings; required by an enabled kind."
    )

    @model_validator(mode="after")
    def _what_the_server_starts_with(self) -> ClusterArchival:
        # common/config/archival.go isArchivalConfigValid, per kind.
        for kind in ARCHIVAL_KINDS:
            spec: ClusterArchivalKind = getattr(self, kind)
            if spec.enabled:
                if spec.uri is None:
                    raise ValueError(
                        f"{kind}: archival is enabled but has no uri; the server needs a "
                        "namespace default URI (s3://<bucket>/<prefix>) to start"
                    )
                if self.s3store is None:
                    raise ValueError(
                        f"{kind}: archival is enabled but archival.s3store (region) is not set; "
                        "the server needs a provider for the URI's scheme to start"
                    )
            elif spec.uri is not None or spec.namespace_default == ArchivalState.ENABLED:
                raise ValueError(
                    f"{kind}: archival is disabled, so uri and namespace_default: enabled are "
                    "not allowed (the server refuses to start with them); set state: enabled"
                )
        return self

    def kind(self, name: str) -> ClusterArchivalKind:
        found: ClusterArchivalKind = getattr(self, name)
        return found

    @property
    def any_enabled(self) -> bool:
        return any(self.kind(k).enabled for k in ARCHIVAL_KINDS)


class NamespaceArchivalKind(FrozenModel):
    """One kind of archival of one namespace."""

    state: ArchivalState
    uri: str | None = Field(
        default=None,
        description="Where this namespace archives to; it can never change once the server "
        "has one. None: the namespace's URI if it has one, else the cluster's default.",
    )

    @field_validator("uri")
    @classmethod
    def _check_uri(cls, value: str | None) -> str | None:
        return _uri(value)


class NamespaceArchival(FrozenModel):
    """`temporal_namespaces[*].archival`; a kind left out is not managed."""

    history: NamespaceArchivalKind | None = None
    visibility: NamespaceArchivalKind | None = None

    def kind(self, name: str) -> NamespaceArchivalKind | None:
        found: NamespaceArchivalKind | None = getattr(self, name)
        return found


def namespace_problems(
    cluster: ClusterArchival, namespaces: list[tuple[str, NamespaceArchival | None]]
) -> list[str]:
    """`key: message` for every namespace archival the cluster's own config would make the
    server ignore (a kind it does not enable). `namespaces`: (key prefix, archival)."""
    problems = []
    for prefix, archival in namespaces:
        if archival is None:
            continue
        for kind in ARCHIVAL_KINDS:
            declared = archival.kind(kind)
            if declared is None or cluster.kind(kind).enabled:
                continue
            if declared.state == ArchivalState.ENABLED or declared.uri is not None:
                problems.append(
                    f"{prefix}.archival.{kind}: the cluster's {kind} archival is not enabled "
                    f"(archival.{kind}.state), so the server would ignore this namespace's "
                    f"{kind} archival; enable it there or declare state: disabled without a uri"
                )
    return problems


def chart_values(cluster: ClusterArchival) -> dict[str, Any]:
    """`server.archival` and `server.namespaceDefaults` in the server's config format (both
    chart layouts write them verbatim into the server config). A disabled kind is only
    `state: disabled`: the server refuses a provider, a URI or enableRead beside it."""
    archival: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for kind in ARCHIVAL_KINDS:
        spec = cluster.kind(kind)
        if not spec.enabled:
            archival[kind] = {"state": "disabled", "enableRead": False}
            defaults[kind] = {"state": "disabled"}
            continue
        assert cluster.s3store is not None and spec.uri is not None  # _what_the_server_starts_with
        s3store: dict[str, Any] = {"region": cluster.s3store.region}
        if cluster.s3store.endpoint:
            s3store["endpoint"] = cluster.s3store.endpoint
        if cluster.s3store.force_path_style:
            s3store["s3ForcePathStyle"] = True
        archival[kind] = {
            "state": "enabled",
            "enableRead": spec.enable_read,
            "provider": {"s3store": s3store},
        }
        defaults[kind] = {"state": spec.namespace_default.value, "URI": spec.uri}
    return {"archival": archival, "namespaceDefaults": {"archival": defaults}}
