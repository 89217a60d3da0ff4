"""check_live_objects: what the chart installed against what runs, object by object, field by
field. Read-only; the drift check runs it after install_chart's dry run.

1. Render the manifest from the declared values exactly as install_chart installs it (the
   same chart and values: helm_cli.release_chart_and_values, rendered with `helm
   template`); helm hooks are not release objects and are skipped.
2. Read each object live with the kubernetes dynamic client and compare it with the
   rendered one by the rules in object_diff.py (only what the manifest sets, after what the
   API server fills in; quantities by value; Secret content by digest only).
3. List the objects that carry the release's label (`app.kubernetes.io/instance=<release>`)
   in the kinds a chart renders: one the manifest no longer has is drift too (a controller's
   objects, those with an ownerReference, are not).
4. The NetworkPolicies the bootstrap keeps beside the chart (declared_state/network_policies.py,
   #23.3) by the same rules, and those it keeps for the release that are no longer declared.
   install_chart writes them (replacing each whole), so every difference in them, a rule
   added by hand included, is repaired by the same `reapply` run.

Each difference is a DriftItem: kind, namespace, name, JSON pointer, live and declared (JSON
text). A difference that `drift_check.ignore` covers is kept with `ignored` set (counted, not
shown, not repaired). What `remediate` can do about each: a field or a missing object the
manifest has is restored by one `helm upgrade` (install_chart with `reapply`), except a list
element added by hand, which neither helm v3's three-way merge nor v4's server-side apply
removes (the drift check says so after the repair); an object the manifest no longer has is
deleted by helm only if the deployed release still lists it, otherwise an operator deletes it.
When the deployed release runs another chart version than the declared one (mid-upgrade, or a
declaration edited without `upgrade`), the declared manifest is another version's: every
difference is then marked `version_skew`, not repairable, with "move it with `upgrade`"
(re-applying would move the server without its schema step, even downgrade it).

An object (or a kind) the API refuses to show (401/403) is `unchecked`: "could not check",
never "in sync". An API that does not answer fails the attempt (retryable), so the drift
check reports the step as "check failed" once its deadline is spent. Nothing is written.

Simplification: `helm template` renders with helm's built-in capabilities, not the cluster's;
a chart that branches on the cluster's version or APIs could render other objects than
`helm upgrade` installed (the Temporal charts only ask for networking.k8s.io/v1 Ingresses,
which both have).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from temporalio import activity

from activities.install_chart import ChartInstaller, version_skew_how
from adapters import object_diff
from adapters.clients import KubeClients
from adapters.errors.kubernetes import KUBERNETES_ERRORS, kubernetes_error
from adapters.helm_cli import HelmCli, HelmCommandFailed
from contracts.base import DriftItem
from contracts.check_live_objects import CheckLiveObjectsInput, CheckLiveObjectsResult
from declared_state.models import Environment, IgnoreRule
from declared_state.network_policies import network_policies, owned_selector
from declared_state.paths import state_dir

INSTANCE_LABEL = "app.kubernetes.io/instance"
HOOK_ANNOTATION = "helm.sh/hook"
FORBIDDEN = (401, 403)
# Kinds a chart renders that are listed for leftovers besides those in the manifest, with
# their API versions (a kind the cluster does not serve is skipped).
LEFTOVER_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("networking.k8s.io/v1", "Ingress"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
)


def rendered_objects(manifest: str, namespace: str) -> list[dict[str, Any]]:
    """The release's objects in a rendered manifest (hooks and empty documents dropped), each
    with its namespace filled in as helm applies it."""
    objects = []
    for doc in yaml.safe_load_all(manifest):
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        meta = doc.setdefault("metadata", {}) or {}
        if (meta.get("annotations") or {}).get(HOOK_ANNOTATION):
            continue
        meta.setdefault("namespace", namespace)
        doc["metadata"] = meta
        objects.append(doc)
    return objects


@dataclass(frozen=True)
class _Ref:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class LiveObjectChecker:
    """The step, bound to the installer's helm and the worker's Kubernetes clients."""

    def __init__(self, installer: ChartInstaller, kube: KubeClients):
        self._installer = installer
        self._kube = kube

    @activity.defn(name="check_live_objects")
    def check_live_objects(self, input: CheckLiveObjectsInput) -> CheckLiveObjectsResult:
        env = input.environment
        helm = self._installer.helm_for(env)
        declared = rendered_objects(self._installer.render(env), env.kubernetes.namespace)
        dyn = self._dynamic(env)
        run = _Check(env, dyn, helm)
        for obj in declared:
            run.compare(obj)
        run.leftovers({(o["kind"], o["metadata"]["name"]) for o in declared})
        policies = network_policies(env)
        for obj in policies:
            run.compare(obj, how=_POLICY_HOW)
        run.stale_policies({o["metadata"]["name"] for o in policies})
        declared += policies
        skew = run.version_skew()
        how = version_skew_how(env, skew) if skew else ""
        drift = tuple(run.drift) if not how else tuple(_skewed(d, how) for d in run.drift)
        ignored = sum(1 for d in drift if d.ignored)
        shown = len(drift) - ignored
        objects = {(d.kind, d.name) for d in drift if not d.ignored}
        summary = (
            f"{len(declared)} objects, {run.compared} compared: "
            + (f"{shown} difference(s) in {len(objects)} object(s)" if shown else "in sync")
            + (f", {ignored} ignored" if ignored else "")
            + (f", {len(run.unchecked)} could not be read" if run.unchecked else "")
            + (f"; {skew}" if skew and shown else "")
        )
        activity.logger.info("%s: %s", env.name, summary)
        return CheckLiveObjectsResult(
            release=env.kubernetes.release,
            namespace=env.kubernetes.namespace,
            objects=len(declared),
            compared=run.compared,
            ignored=ignored,
            changed=False,
            summary=summary,
            drift=drift,
            unchecked=tuple(run.unchecked),
            dry_run=input.dry_run,
        )

    def _dynamic(self, env: Environment) -> DynamicClient:
        what = f"reading the objects of release {env.kubernetes.release!r}"
        try:
            api = self._kube.api_client(env.kubernetes.context)
            host = api.configuration.host.encode()
            cache = state_dir() / "kube-discovery" / f"{hashlib.sha256(host).hexdigest()[:16]}.json"
            cache.parent.mkdir(parents=True, exist_ok=True)
            return DynamicClient(api, cache_file=str(cache))
        except KUBERNETES_ERRORS as exc:
            raise kubernetes_error(what, exc) from None


class _Check:
    """One run: the differences and what could not be read."""

    def __init__(self, env: Environment, dyn: DynamicClient, helm: HelmCli):
        self.env, self.dyn, self.helm = env, dyn, helm
        self.rules: tuple[IgnoreRule, ...] = env.drift_check.ignore
        self.namespace = env.kubernetes.namespace
        self.release = env.kubernetes.release
        self.drift: list[DriftItem] = []
        self.unchecked: list[DriftItem] = []
        self.compared = 0
        self._deployed: set[tuple[str, str]] | None = None

    # -- each rendered object ------------------------------------------------------------
    def compare(self, declared: dict[str, Any], how: str | None = None) -> None:
        """Compare one declared object with its live copy; `how` set: an object the
        bootstrap writes itself (replacing it whole, so every difference is repairable)."""
        meta = declared["metadata"]
        kind, name = str(declared["kind"]), str(meta["name"])
        resource = self._resource(str(declared.get("apiVersion", "")), kind)
        namespace = (
            str(meta.get("namespace") or "") if resource is None or resource.namespaced else ""
        )
        ref = _Ref(kind, namespace, name)
        if resource is None:
            self._add(
                ref,
                "",
                None,
                "exists",
                f"{ref}: missing (the cluster does not serve kind {kind})",
                repairable=False,
                how="install the API (CRD) the chart needs, then remediate",
            )
            return
        try:
            live = resource.get(name=name, namespace=namespace or None).to_dict()
        except ApiException as exc:
            if exc.status == 404:
                self._add(ref, "", None, "exists", f"{ref}: missing live", how=how or _HELM_HOW)
                return
            if exc.status in FORBIDDEN:
                self._unchecked(
                    ref,
                    f"{ref}: could not check: reading it is forbidden ({exc.status} {exc.reason}); grant get on {resource.name}",
                )
                return
            raise kubernetes_error(f"reading {ref} in {namespace or 'the cluster'}", exc) from None
        except KUBERNETES_ERRORS as exc:
            raise kubernetes_error(f"reading {ref} in {namespace or 'the cluster'}", exc) from None
        self.compared += 1
        for diff in object_diff.compare(kind, live, declared):
            extra = diff.declared is object_diff.MISSING and isinstance(
                diff.live, dict | str | int | float | bool | list
            )
            # helm's merge (v3) and apply (v4) leave list elements they never set alone.
            added = how is None and extra and diff.path.rsplit("/", 1)[-1].isdigit()
            text = object_diff.brief(kind, diff.path, diff.live, diff.declared)
            self._add(
                ref,
                diff.path,
                object_diff.shown(kind, diff.path, diff.live),
                object_diff.shown(kind, diff.path, diff.declared),
                f"{ref}: {diff.path} {text}",
                repairable=not added,
                how=(
                    f"helm keeps what no revision of the chart set: remove it by hand "
                    f"(kubectl -n {namespace} edit {kind.lower()} {name})"
                    if added
                    else how or _HELM_HOW
                ),
            )

    def stale_policies(self, declared: set[str]) -> None:
        """The bootstrap's NetworkPolicies for this release that are no longer declared (a
        peer removed, `network_policy.enabled: false`): install_chart deletes them."""
        resource = self._resource("networking.k8s.io/v1", "NetworkPolicy")
        if resource is None:
            return
        selector = owned_selector(self.release)
        try:
            listed = resource.get(namespace=self.namespace, label_selector=selector).to_dict()
        except ApiException as exc:
            if exc.status in FORBIDDEN:
                self._unchecked(
                    _Ref("NetworkPolicy", self.namespace, ""),
                    f"NetworkPolicies of release {self.release}: could not check: listing them "
                    f"is forbidden ({exc.status} {exc.reason}); grant list on networkpolicies",
                )
                return
            raise kubernetes_error(f"listing networkpolicies in {self.namespace}", exc) from None
        except KUBERNETES_ERRORS as exc:
            raise kubernetes_error(f"listing networkpolicies in {self.namespace}", exc) from None
        for item in listed.get("items") or []:
            name = str((item.get("metadata") or {}).get("name", ""))
            if name in declared:
                continue
            ref = _Ref("NetworkPolicy", self.namespace, name)
            self._add(
                ref,
                "",
                "exists",
                None,
                f"{ref}: no longer declared (network_policy), but kept by the bootstrap",
                how="remediate: install_chart deletes the bootstrap's NetworkPolicies no "
                "longer declared",
            )

    # -- objects the manifest does not have ----------------------------------------------
    def leftovers(self, rendered: set[tuple[str, str]]) -> None:
        selector = f"{INSTANCE_LABEL}={self.release}"
        kinds = dict.fromkeys(LEFTOVER_KINDS)
        for api_version, kind in kinds:
            resource = self._resource(api_version, kind)
            if resource is None:
                continue
            try:
                listed = resource.get(namespace=self.namespace, label_selector=selector).to_dict()
            except ApiException as exc:
                if exc.status in FORBIDDEN:
                    self._unchecked(
                        _Ref(kind, self.namespace, ""),
                        f"{kind} objects of release {self.release}: could not check: listing "
                        f"them is forbidden ({exc.status} {exc.reason}); grant list on {resource.name}",
                    )
                    continue
                raise kubernetes_error(
                    f"listing {resource.name} in {self.namespace}", exc
                ) from None
            except KUBERNETES_ERRORS as exc:
                raise kubernetes_error(
                    f"listing {resource.name} in {self.namespace}", exc
                ) from None
            for item in listed.get("items") or []:
                meta = item.get("metadata") or {}
                name = str(meta.get("name", ""))
                if (kind, name) in rendered or meta.get("ownerReferences"):
                    continue
                if (meta.get("annotations") or {}).get(HOOK_ANNOTATION):
                    continue
                ref = _Ref(kind, self.namespace, name)
                deployed = (kind, name) in self._deployed_objects()
                self._add(
                    ref,
                    "",
                    "exists",
                    None,
                    f"{ref}: not in the chart's manifest, but labelled {selector}",
                    repairable=deployed,
                    how=(
                        _HELM_HOW + " (the deployed release lists it, so helm deletes it)"
                        if deployed
                        else f"not the release's: delete it by hand if it is unused "
                        f"(kubectl -n {self.namespace} delete {kind.lower()} {name})"
                    ),
                )

    def _deployed_objects(self) -> set[tuple[str, str]]:
        """(kind, name) of the objects the deployed release lists (`helm get manifest`)."""
        if self._deployed is None:
            try:
                manifest = self.helm.run_kube(
                    ["get", "manifest", self.release, "--namespace", self.namespace]
                )
            except (HelmCommandFailed, OSError) as exc:
                activity.logger.info("helm get manifest of %s: %s", self.release, exc)
                manifest = ""
            self._deployed = {
                (str(o["kind"]), str(o["metadata"]["name"]))
                for o in rendered_objects(manifest, self.namespace)
            }
        return self._deployed

    def version_skew(self) -> str | None:
        """How the deployed release's chart differs from the declared one ("the cluster runs
        chart temporal-0.55.0 (app 1.26.2), declared temporal-0.52.0 (server 1.25.2)"), or
        None when it does not (or there is no release to ask: install_chart reports that)."""
        try:
            history = self.helm.run_json(
                ["history", self.release, "--max", "1", "--namespace", self.namespace]
            )
        except (HelmCommandFailed, OSError, ValueError) as exc:
            activity.logger.info("helm history of %s: %s", self.release, exc)
            return None
        if not history:
            return None
        latest = history[-1]
        chart = self.env.chart
        live, declared = str(latest.get("chart", "")), f"{chart.name}-{chart.version}"
        if live == declared:
            return None
        return (
            f"the cluster runs chart {live} (server {latest.get('app_version') or '?'}), "
            f"declared {declared} (server {chart.target_server_version})"
        )

    # -- plumbing ------------------------------------------------------------------------
    def _resource(self, api_version: str, kind: str) -> Any:
        try:
            return self.dyn.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            return None
        except KUBERNETES_ERRORS as exc:
            raise kubernetes_error(f"discovering kind {kind} ({api_version})", exc) from None

    def _add(
        self,
        ref: _Ref,
        path: str,
        live: str | None,
        declared: str | None,
        message: str,
        *,
        repairable: bool = True,
        how: str = "",
    ) -> None:
        ignored = any(rule.matches(ref.kind, ref.name, path) for rule in self.rules)
        self.drift.append(
            DriftItem(
                message=message,
                kind=ref.kind,
                namespace=ref.namespace,
                name=ref.name,
                path=path,
                live=live,
                declared=declared,
                repairable=repairable and not ignored,
                how="" if ignored else how,
                ignored=ignored,
            )
        )

    def _unchecked(self, ref: _Ref, message: str) -> None:
        self.unchecked.append(
            DriftItem(message=message, kind=ref.kind, namespace=ref.namespace, name=ref.name)
        )


_HELM_HOW = "remediate: one helm upgrade re-applies the chart's manifest"
_POLICY_HOW = (
    "remediate: install_chart replaces the bootstrap's NetworkPolicy with the declared one "
    "(declared_state/network_policies.py)"
)


def _skewed(item: DriftItem, how: str) -> DriftItem:
    """A difference seen while another chart version runs: the declared manifest is another
    version's, so re-applying it would up- or downgrade the cluster without its schema step
    (#20.2). Only `upgrade` moves versions; remediate leaves the release alone."""
    if item.ignored:
        return item.model_copy(update={"version_skew": True})
    return item.model_copy(update={"repairable": False, "version_skew": True, "how": how})


__all__ = ["LiveObjectChecker", "rendered_objects"]
