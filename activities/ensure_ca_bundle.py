"""ensure_ca_bundle: publish the RDS CA bundle as the ConfigMap the server pods mount.

The bundle comes from the environment's source (a local file or an S3 object), must parse as
one or more PEM certificates, and lands under `ca_bundle.key` of ConfigMap
`ca_bundle.config_map` in the release's namespace (created here when missing: this step runs
before helm). Equal content means no write. `dry_run` reports what would change (`drift`,
`action`) and writes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from temporalio import activity

from adapters.clients import AwsClients, KubeClients
from adapters.errors import ErrorType, activity_error
from adapters.kube_objects import (
    Ensured,
    core_api,
    describe_write,
    ensure_namespace_labels,
    ensure_namespaced_object,
    key_differences,
    pod_security_labels,
)
from adapters.sources import describe_source, fetch_ca_bundle, parse_certificates
from contracts.ensure_ca_bundle import EnsureCaBundleInput, EnsureCaBundleResult
from declared_state.models import PodSecurityLevel

# The API server refuses ConfigMaps above 1 MiB; say so before it does.
MAX_CONFIG_MAP_BYTES = 1024 * 1024


class CaBundlePublisher:
    """Publishes the CA bundle; clients are built once by the worker."""

    def __init__(self, aws: AwsClients, kube: KubeClients):
        self._aws = aws
        self._kube = kube

    @activity.defn(name="ensure_ca_bundle")
    def ensure_ca_bundle(self, input: EnsureCaBundleInput) -> EnsureCaBundleResult:
        env = input.environment
        spec = env.ca_bundle
        origin = describe_source(spec.source)
        bundle = fetch_ca_bundle(spec.source, self._aws)
        certificates = parse_certificates(bundle, origin)
        if not certificates:
            raise activity_error(
                f"CA bundle {origin} holds no PEM certificate", ErrorType.CA_BUNDLE_INVALID
            )
        if len(bundle) > MAX_CONFIG_MAP_BYTES:
            raise activity_error(
                f"CA bundle {origin} is {len(bundle)} bytes, more than a ConfigMap can hold (1 MiB)",
                ErrorType.CA_BUNDLE_INVALID,
            )
        try:
            text = bundle.decode("utf-8")
        except UnicodeDecodeError:
            raise activity_error(
                f"CA bundle {origin} is not UTF-8 text; a ConfigMap data value must be",
                ErrorType.CA_BUNDLE_INVALID,
            ) from None
        earliest = min(cert.not_valid_after_utc for cert in certificates)
        if earliest <= datetime.now(UTC):
            activity.logger.warning(
                "CA bundle %s contains a certificate that expired at %s", origin, earliest
            )

        def build(current: Any | None, meta: k8s.V1ObjectMeta) -> k8s.V1ConfigMap:
            data = dict(current.data or {}) if current is not None else {}
            data[spec.key] = text
            binary = dict(current.binary_data or {}) if current is not None else {}
            # A key may live in data or binaryData, not both.
            binary.pop(spec.key, None)
            return k8s.V1ConfigMap(metadata=meta, data=data, binary_data=binary or None)

        def differences(live: Any) -> list[str]:
            found = key_differences(live.data or {}, {spec.key: text}, f"CA bundle {origin}")
            if spec.key in (live.binary_data or {}):
                found.append(f"key {spec.key} also in binaryData")
            return found

        core = core_api(self._kube, env.kubernetes.context)
        # This is the first step that writes into the namespace, so it also creates it with
        # its Pod Security labels: the chart's pods are then admitted (or refused) by the
        # level the environment declares from their first creation on.
        labelled: Ensured | None = None
        if env.pod_security != PodSecurityLevel.NONE:
            labelled = ensure_namespace_labels(
                core,
                env.kubernetes.namespace,
                pod_security_labels(env.pod_security.value),
                dry_run=input.dry_run,
            )
        action, drift = ensure_namespaced_object(
            core,
            "ConfigMap",
            env.kubernetes.namespace,
            spec.config_map,
            build=build,
            differences=differences,
            dry_run=input.dry_run,
        )
        return EnsureCaBundleResult(
            config_map=spec.config_map,
            namespace=env.kubernetes.namespace,
            key=spec.key,
            action=action,
            sha256=hashlib.sha256(bundle).hexdigest(),
            certificates=len(certificates),
            earliest_expiry=earliest,
            pod_security=labelled.action if labelled else None,
            changed=action != "unchanged"
            or (labelled is not None and labelled.action != "unchanged"),
            summary=describe_write(
                f"ConfigMap {env.kubernetes.namespace}/{spec.config_map}", action, input.dry_run
            )
            + f" ({len(certificates)} certificate{'s' if len(certificates) != 1 else ''}, "
            f"earliest expiry {earliest:%Y-%m-%d})"
            + (
                f"; Namespace {env.kubernetes.namespace} Pod Security labels {labelled.action}"
                if labelled and labelled.action != "unchanged"
                else ""
            ),
            dry_run=input.dry_run,
            drift=(*(labelled.drift if labelled and labelled.action != "created" else ()), *drift),
        )
