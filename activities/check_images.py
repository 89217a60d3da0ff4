"""check_images: the image preflight, before the first write of a provision or upgrade hop.

A missing or mistyped tag is the most common way an install or upgrade fails half-way on a
real cluster: helm applies, the pods sit in ImagePullBackOff, the schema Job never starts.
So before anything is written (provision: before ensure_ca_bundle; upgrade hop: before the
snapshot and the schema Job) this step renders the manifests install_chart would apply
(`helm template` of the same chart and values, ChartInstaller.render), collects the image of
every container and init container of every pod template in them (hooks included: helm
runs those too), adds the images the step's caller pulls beside them (the hop's schema
Job), and asks each image's registry whether the tag exists (adapters/registry.py: OCI
distribution API HEAD of the manifest, Docker Hub's anonymous token flow, the mirrors and
credentials of `image_registry`).

Verdicts (adapters/errors/registry.py): a missing image stops the run here, naming every
missing image, what pulls it, the registry asked and what to do (the tag the chart pins, or
the `images.*` override to fix); a registry that cannot be reached or refuses the worker is
a warning in the result and the run goes on (air-gapped clusters pull from mirrors the
worker may not see; the cluster may hold pull secrets the worker lacks), unless
`image_registry.strict`. `image_registry.preflight: false` skips the lookups (the result
says so). Read-only; the same answer on every attempt.
"""

from __future__ import annotations

import subprocess
from typing import Any

import yaml
from temporalio import activity

from activities.install_chart import ChartInstaller, registry_client
from adapters.errors import ErrorType, activity_error
from adapters.errors.registry import Outcome, registry_error, registry_problem
from adapters.registry import RegistryUnreachable
from contracts.check_images import CheckImagesInput, CheckImagesResult, ImageCheck
from declared_state.models import Environment, ImagesSpec

POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def manifest_images(manifest: str) -> dict[str, list[str]]:
    """image -> the objects whose pods pull it (`Deployment/temporal-web`), in order."""
    found: dict[str, list[str]] = {}
    for doc in yaml.safe_load_all(manifest):
        if not isinstance(doc, dict) or doc.get("kind") not in POD_TEMPLATE_PATHS:
            continue
        spec: Any = doc
        for key in POD_TEMPLATE_PATHS[doc["kind"]]:
            spec = spec.get(key) if isinstance(spec, dict) else None
        if not isinstance(spec, dict):
            continue
        who = f"{doc['kind']}/{(doc.get('metadata') or {}).get('name', '?')}"
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            image = container.get("image") if isinstance(container, dict) else None
            if image and who not in found.setdefault(image, []):
                found[image].append(who)
    return found


def _advice(env: Environment) -> str:
    """What to do: the images the chart pins, and which declared override differs."""
    pinned = ImagesSpec().resolve(env.chart)
    resolved = env.resolved_images
    pins = ", ".join(
        f"{name.replace('_', '-')} {image.reference}"
        for name, image in pinned.components()
        if image is not None
    )
    overridden = [
        f"images.{name} ({getattr(resolved, name)})"
        for name, image in pinned.components()
        if getattr(resolved, name) != image
    ]
    what = f"Fix {' / '.join(overridden)} in the environment" if overridden else "Mirror the images"
    return (
        f"Nothing was written. Chart {env.chart.version} pins {pins}. {what} (or declare a "
        "chart.version whose images exist), then retry or abort; `python starter.py upgrade "
        "ENV --plan` lists each hop's images"
    )


class CheckImages:
    def __init__(self, installer: ChartInstaller):
        self._installer = installer

    @activity.defn(name="check_images")
    def check_images(self, input: CheckImagesInput) -> CheckImagesResult:
        env = input.environment
        images = self._rendered_images(env)  # by tag: the digests are what it finds
        for image in input.job_images:
            images.setdefault(image, []).append("schema Job")
        settings = env.image_registry
        if not settings.preflight:
            return CheckImagesResult(
                images=(),
                changed=False,
                summary=f"image preflight off (image_registry.preflight): {len(images)} "
                "image(s) not checked",
                dry_run=input.dry_run,
            )
        client = registry_client(env)
        checks: list[ImageCheck] = []
        problems: dict[Outcome, list[str]] = {}
        for image, used_by in images.items():
            activity.heartbeat({"phase": f"checking {image}"})
            outcome: Outcome
            digest: str | None = None
            try:
                answer = client.exists(image)
                outcome, registry, asked = answer.verdict, answer.registry, answer.asked
                detail, digest = f"HTTP {answer.status}", answer.digest
            except RegistryUnreachable as exc:
                outcome, registry, asked, detail = "unreachable", exc.registry, exc.url, exc.reason
            checks.append(
                ImageCheck(
                    image=image,
                    used_by=tuple(used_by),
                    registry=registry,
                    asked=asked,
                    outcome=outcome,
                    digest=digest,
                )
            )
            if outcome != "found":
                problem = registry_problem(outcome, image, registry, asked, detail)
                problems.setdefault(outcome, []).append(
                    f"{problem}, pulled by {', '.join(used_by)}"
                )
        if "missing" in problems:
            raise registry_error("missing", problems["missing"], _advice(env))
        warnings = [p for outcome in ("denied", "unreachable") for p in problems.get(outcome, [])]
        if settings.strict:
            for outcome in ("denied", "unreachable"):
                if outcome in problems:
                    raise registry_error(
                        outcome,
                        problems[outcome],
                        "image_registry.strict is on: fix the registry access, or turn strict "
                        "off to go on with a warning",
                    )
        for warning in warnings:
            activity.logger.warning("image preflight: %s", warning)
        found = sum(1 for c in checks if c.outcome == "found")
        summary = f"{found} of {len(checks)} image(s) found in their registries"
        if warnings:
            summary += f"; {len(warnings)} not checked (warnings)"
        return CheckImagesResult(
            images=tuple(checks),
            warnings=tuple(warnings),
            changed=False,
            summary=summary,
            dry_run=input.dry_run,
        )

    def _rendered_images(self, env: Environment) -> dict[str, list[str]]:
        try:
            return manifest_images(self._installer.render(env, pinned=False))
        except subprocess.CalledProcessError as exc:  # pragma: no cover - render maps helm's
            raise activity_error(f"helm template failed: {exc}", ErrorType.HELM_FAILED) from None
