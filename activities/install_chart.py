"""install_chart: `helm upgrade --install` of the Temporal chart with the generated values.

Idempotent: a release that is `deployed` with the declared chart version and exactly the
declared values is left alone (no new revision). A release left `pending-*` by a worker that
died mid-helm is recovered once it is older than `pending_grace`: its pending revision is
marked `failed` in helm's record (helm_release_record.py), as helm marks an upgrade it saw
fail, and the step's `helm upgrade` then starts from the last deployed revision's state
(helm adopts what the killed helm created, deletes what the new chart drops); a first
install that never deployed is uninstalled instead. Not `helm rollback`: helm killed
mid-apply of a chart that drops objects (0.55 -> 0.63 drops `temporal-admintools`) leaves
them in the cluster but not in the pending revision's manifest, and the rollback fails on
them ("original object Service ... not found"), as a rollback by hand would. Before any of that, the step looks for a helm still working
on the release (helm_cli.helms_holding). One nobody will ever read the outcome of (started
by an earlier attempt of this step, or by a worker that is gone since) is stopped like a
cancelled one (SIGTERM, then SIGKILL) and waited for, after which the release it left is
recovered at once. One that another live run started, or anybody started by hand, is never
touched: the step waits for an operator, naming its PID and command. helm itself waits for readiness and rolls back on failure
(v3 `--atomic`, v4 `--rollback-on-failure`); helm's output is streamed into heartbeats, and a
cancelled activity terminates helm (SIGTERM, then SIGKILL). While helm waits, the release's
pods that are not ready are read with kubelet's reasons (pod_status.py): they are in the
heartbeats, and a wait that runs out names them (`... configmap "rds-ca-certs" not found`),
which helm's own message (`context deadline exceeded`) does not. The process supervision and
helm's error message are helm_cli's (`HelmProcess`, `error_message`); what a failure means
(pending, timeout, bad values, other) is errors/helm.py's table.

`reapply` upgrades a release that is as declared anyway, so helm re-applies its manifest over
objects changed by hand (the drift check's repair of check_live_objects' findings). helm v3
merges three ways (old manifest, new manifest, live object) and so restores every field the
manifest sets; helm v4 applies server-side and is given `--force-conflicts`, because a hand
edit (`kubectl scale`, `kubectl edit`) makes its author the owner of the field and a plain
apply would fail with a conflict on it: the declaration wins, after the drift check has
reported the edit. Neither removes what the manifest never set (an env var added by hand).

helm is not asked to create the namespace (`--create-namespace`): ensure_ca_bundle and
ensure_db_secret run first and create it when it is missing. With the flag, helm v4 applies the
Namespace object on every install and helm v3 posts one, which a worker restricted to its
target namespace may not do (deploy/: a Role cannot grant creating namespaces); a release
whose namespace is gone fails with helm's `namespaces "..." not found`.

Every run reports how the release differed from the declaration before it acted (`drift`:
missing, pending or failed, another chart version, the dotted paths of differing values, never
the values). `dry_run` only reads: no upgrade, rollback or uninstall.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from adapters.clients import KubeClients
from adapters.errors import ErrorType, activity_error
from adapters.errors.helm import helm_error
from adapters.errors.kubernetes import KUBERNETES_ERRORS, kubernetes_error
from adapters.errors.registry import Outcome, registry_error, registry_problem
from adapters.helm_cli import (
    TERMINATE_GRACE_S,
    HelmCli,
    HelmCommandFailed,
    HelmNotFound,
    error_message,
    release_chart_and_values,
    render_environment,
)
from adapters.helm_release_record import (
    RecordChanged,
    UnsupportedDriver,
    mark_failed,
    record_name,
)
from adapters.kube_objects import PolicyChange, ensure_network_policies
from adapters.pod_status import refused_pods, unready_pods
from adapters.processes import stop_pid
from adapters.registry import RegistryClient, RegistryUnreachable, client_for
from contracts.base import DriftItem, differing_paths
from contracts.install_chart import InstallChartInput, InstallChartResult, ReleaseAction
from declared_state.chart_values import (
    ProvidedSecretKey,
    image_references,
    provided_secret_keys,
)
from declared_state.models import Environment, ImagePin
from declared_state.network_policies import network_policies, owned_selector

HEARTBEAT_EVERY_S = 5.0
# While helm waits, the release's pods are looked at this often, so a wait that runs out can
# say which pod was not ready and why (a missing Secret or ConfigMap, say) before helm's
# rollback removes them.
POD_CHECK_EVERY_S = 2.0
PENDING_STATES = ("pending-install", "pending-upgrade", "pending-rollback")

MAX_DRIFT_PATHS = 10


def _values_drift(live: Any, declared: Any) -> list[str]:
    """`values differ at: a.b, c.d and N more`, or [] when equal; paths only, never values."""
    paths = [p or "(all values)" for p in differing_paths(_normalized(live), _normalized(declared))]
    if not paths:
        return []
    shown = ", ".join(paths[:MAX_DRIFT_PATHS])
    more = len(paths) - MAX_DRIFT_PATHS
    return [f"values differ at: {shown}" + (f" and {more} more" if more > 0 else "")]


def _normalized(values: Any) -> Any:
    """JSON round trip, so the values we send and the ones helm stored compare equal."""
    return json.loads(json.dumps(values or {}, sort_keys=True))


def _parse_time(text: str) -> datetime | None:
    """helm's RFC 3339 timestamps carry nanoseconds; Python takes microseconds."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", text)
    if not match:
        return None
    base, frac, zone = match.groups()
    stamp = base + (f".{frac[:6]}" if frac else "") + ("+00:00" if zone in (None, "Z") else zone)
    return datetime.fromisoformat(stamp)


def registry_client(env: Environment) -> RegistryClient:
    """The registry client env's `image_registry` describes (mirrors, credentials)."""
    settings = env.image_registry
    try:
        return client_for(settings.mirrors, settings.credentials_file)
    except ValueError as exc:
        raise activity_error(
            f"image_registry.credentials_file: {exc}", ErrorType.CONFIGURATION_MISMATCH
        ) from None


def resolve_digests(
    env: Environment, on_lookup: Callable[[str], None] | None = None
) -> dict[str, str]:
    """`images.pin: digest`: each image the values name -> the digest its tag names now
    (what the release deploys, and what a later dry run compares with: a tag that moved is
    drift). {} with `pin: tag`. An image that cannot be resolved stops the step, with the
    preflight's verdicts (missing, denied: for good; unreachable: retried). `on_lookup`:
    called before each lookup (install_chart heartbeats there: a lookup may take the
    registry's whole timeout)."""
    if env.images.pin != ImagePin.DIGEST:
        return {}
    client = registry_client(env)
    found: dict[str, str] = {}
    for reference in image_references(env):
        if on_lookup is not None:
            on_lookup(reference)
        try:
            answer = client.exists(reference)
        except RegistryUnreachable as exc:
            problem = registry_problem("unreachable", reference, exc.registry, exc.url, exc.reason)
            raise registry_error("unreachable", [problem], _PIN_ADVICE) from None
        if answer.verdict != "found" or not answer.digest:
            outcome: Outcome = "missing" if answer.verdict == "found" else answer.verdict
            detail = f"HTTP {answer.status}" + ("" if answer.digest else ", no digest")
            problem = registry_problem(outcome, reference, answer.registry, answer.asked, detail)
            raise registry_error(outcome, [problem], _PIN_ADVICE)
        found[reference] = answer.digest
    return found


_PIN_ADVICE = (
    "images.pin is digest: every image is deployed by the digest its tag names, so each must "
    "be resolved first; fix the registry access or set images.pin: tag"
)


class ChartInstaller:
    """Runs helm with the worker's Kubernetes credentials (`KubeClients`: a kubeconfig, or in
    a pod its ServiceAccount); the context comes from each environment."""

    def __init__(
        self,
        helm_binary: str | None = None,
        kubeconfig: str | None = None,
        kube: KubeClients | None = None,
    ):
        self._helm_binary = helm_binary
        self._kube = kube or KubeClients(kubeconfig)
        self._base: HelmCli | None = None

    def helm_for(self, env: Environment) -> HelmCli:
        context = env.kubernetes.context
        try:
            helm_context = self._kube.helm_context(context)
            if self._base is None:
                self._base = HelmCli(self._helm_binary, self._kube.helm_kubeconfig())
        except HelmNotFound as exc:
            raise activity_error(str(exc), ErrorType.CONFIGURATION_MISMATCH) from None
        except (ConfigException, OSError) as exc:
            raise kubernetes_error(f"kube context {context or '(current)'}", exc) from None
        return self._base.with_context(helm_context)

    def render(self, env: Environment, *, pinned: bool = True) -> str:
        """The manifest `install_chart` would install for env (`helm template` of the same
        chart and values), for the drift check's live comparisons; chart and helm failures
        become the activity errors install_chart raises for them. `pinned` False: images by
        tag even with `images.pin: digest` (the preflight resolves the tags itself)."""
        digests = resolve_digests(env) if pinned else {}
        try:
            return render_environment(env, self.helm_for(env), digests)
        except (OSError, ValueError) as exc:
            raise activity_error(
                f"chart of environment {env.name!r}: {exc}", ErrorType.CONFIGURATION_MISMATCH
            ) from None
        except subprocess.TimeoutExpired:
            raise activity_error(
                f"helm template of environment {env.name!r} did not finish in time",
                ErrorType.HELM_FAILED,
            ) from None
        except HelmCommandFailed as exc:
            raise helm_error(
                "helm template",
                exc.stderr,
                release=env.kubernetes.release,
                namespace=env.kubernetes.namespace,
                environment=env.name,
                timeout_s=0,
            ) from None

    @activity.defn(name="install_chart")
    def install_chart(self, input: InstallChartInput) -> InstallChartResult:
        env = input.environment
        digests = resolve_digests(
            env, lambda image: activity.heartbeat({"phase": f"resolving {image} to its digest"})
        )
        core = self._kube.core_v1(env.kubernetes.context)
        result = _Install(self.helm_for(env), input, core, digests).run()
        return result.model_copy(update={"digests": digests}) if digests else result


def version_skew_how(env: Environment, detail: str = "") -> str:
    """What a difference caused by version skew says to do (install_chart's own and the live
    objects' findings): never remediate, which would move versions without the schema."""
    return (
        f"version skew{f' ({detail})' if detail else ''}: move it with "
        f"`python starter.py upgrade {env.name}` (remediate leaves the release alone)"
    )


def _counted(changes: tuple[PolicyChange, ...]) -> list[str]:
    """`2 created, 1 updated`."""
    actions = [c.action for c in changes]
    return [f"{actions.count(a)} {a}" for a in dict.fromkeys(actions)]


class _PodsRefused(Exception):
    """Admission refuses the release's pods: waiting longer cannot help."""


class _Install:
    """One run of the step; holds what the helm calls share."""

    def __init__(
        self,
        helm: HelmCli,
        input: InstallChartInput,
        core: k8s.CoreV1Api,
        digests: dict[str, str] | None = None,
    ):
        self.helm, self.input, self.env, self.core = helm, input, input.environment, core
        self.digests = digests or {}
        self.unready: list[str] = []  # the release's pods not ready at the last look
        self.refused: list[str] = []  # its ReplicaSets whose pods admission refuses
        self.release = self.env.kubernetes.release
        self.namespace = self.env.kubernetes.namespace
        self.started = time.monotonic()
        self.where = f"release {self.release!r} in namespace {self.namespace!r}"
        self._version_drift: set[str] = set()
        self.policies: tuple[PolicyChange, ...] = ()
        info = activity.info()
        # Every attempt of this activity: the helm an earlier one left is ours to stop.
        self.owner = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"

    # -- the step ------------------------------------------------------------------------
    def run(self) -> InstallChartResult:
        self._heartbeat("checking")
        try:
            chart, values = release_chart_and_values(self.env, self.digests)
        except (OSError, ValueError) as exc:
            raise activity_error(
                f"chart of environment {self.env.name!r}: {exc}", ErrorType.CONFIGURATION_MISMATCH
            ) from None
        try:
            self.helm.major_version  # noqa: B018 - probe once, before anything changes
        except (HelmCommandFailed, OSError, ValueError) as exc:
            raise activity_error(
                f"helm {self.helm.binary} does not run: {exc}", ErrorType.HELM_FAILED
            ) from None
        history = self._history()
        drift = self._drift(history, values)
        if self.input.dry_run:
            return self._dry_run_result(history, drift)
        self._check_provided_secrets()
        abandoned = self._stop_abandoned_helm()
        if abandoned:
            history = self._history()
        recovered_from = None
        if history and history[-1]["status"] in PENDING_STATES:
            recovered_from = self._recover(history, abandoned=abandoned)
            history = self._history()
            in_sync = not self._drift(history, values)
        else:
            in_sync = not drift
        # Before helm, so the pods never run without them; every run, so a hand edit is
        # repaired (#23.3, declared_state/network_policies.py).
        self.policies = ensure_network_policies(
            self.core, self.namespace, network_policies(self.env), owned_selector(self.release)
        )
        if in_sync and not self.input.reapply:
            latest = history[-1]
            activity.logger.info("%s is up to date at revision %s", self.where, latest["revision"])
            return self._result(latest, "unchanged", recovered_from, drift)
        action = self._would_act(history)
        why = "; ".join(drift) or "re-applying the manifest over objects changed by hand"
        activity.logger.info("%s: %s", self.where, why)
        self._upgrade(chart.chart, list(chart.flags), values)
        final = self._history()
        if not final:
            raise activity_error(
                f"helm reported success but {self.where} has no history", ErrorType.HELM_FAILED
            )
        activity.logger.info("%s %s: revision %s", self.where, action, final[-1]["revision"])
        return self._result(final[-1], action, recovered_from, drift)

    def _check_provided_secrets(self) -> None:
        """The Secret keys the operator provides (the UI's OIDC client secret) must be there
        before helm runs: a pod whose secretKeyRef is missing never starts
        (CreateContainerConfigError), so helm would wait out its whole --timeout and roll
        back, and the error would say so only after it. Only the key names are looked at;
        the values are neither kept, logged nor returned."""
        missing: list[tuple[ProvidedSecretKey, str]] = []
        for ref in provided_secret_keys(self.env):
            what = f"Secret {ref.name!r} in namespace {self.namespace!r}"
            where = f"({ref.declared_at}, read by {ref.read_by})"
            try:
                secret = self.core.read_namespaced_secret(ref.name, self.namespace)
            except KUBERNETES_ERRORS as exc:
                if not (isinstance(exc, ApiException) and exc.status == 404):
                    raise kubernetes_error(f"reading {what}", exc) from None
                missing.append((ref, f"{what} does not exist {where}"))
                continue
            if ref.key not in (secret.data or {}):
                missing.append((ref, f"{what} has no key {ref.key!r} {where}"))
            del secret
        if missing:
            create = "; ".join(
                f"kubectl -n {self.namespace} create secret generic {ref.name} "
                f"--from-file={ref.key}=<file with the value>"
                for ref, _ in missing
            )
            raise activity_error(
                f"{'; '.join(why for _, why in missing)}: its pods would never start, so "
                f"nothing was installed. Create it ({create}), then "
                f"`python starter.py retry {self.env.name}`",
                ErrorType.CONFIGURATION_MISMATCH,
            )

    def _drift(self, history: list[dict[str, Any]], values: dict[str, Any]) -> tuple[str, ...]:
        """How the latest revision differs from the declaration; () when it is up to date."""
        if not history:
            return (f"release {self.release} missing",)
        latest = history[-1]
        status, revision = str(latest["status"]), latest["revision"]
        if status in PENDING_STATES or status == "uninstalled":
            # Pending: what is left after the recovery cannot be known before it; uninstalled:
            # nothing is live to compare. The state says it all.
            return (f"release is {status} (revision {revision})",)
        drift = [] if status == "deployed" else [f"release is {status} (revision {revision})"]
        chart, expected = str(latest.get("chart", "")), self._expected_chart()
        if chart != expected:
            # Another chart version is an upgrade (schema first, one minor at a time), which
            # the drift check must never "remediate" by re-applying this step.
            moved = (
                f"chart {chart}, declared {expected}: move it with "
                f"`python starter.py upgrade {self.env.name}`"
            )
            self._version_drift.add(moved)
            drift.append(moved)
        return (*drift, *_values_drift(self._deployed_values(), values))

    @staticmethod
    def _would_act(history: list[dict[str, Any]]) -> Literal["installed", "upgraded"]:
        """Upgraded when some revision is (or was) live, installed when none is."""
        if history and history[-1]["status"] == "pending-install":
            # Recovered by uninstalling when nothing was ever deployed before it.
            history = history if any(h["status"] == "deployed" for h in history) else []
        return "upgraded" if any(h["status"] != "uninstalled" for h in history) else "installed"

    def _dry_run_result(
        self, history: list[dict[str, Any]], drift: tuple[str, ...]
    ) -> InstallChartResult:
        action = self._would_act(history) if drift else "unchanged"
        activity.logger.info("%s: dry run, would be %s: %s", self.where, action, drift)
        latest = history[-1] if history else {"revision": 0, "status": "missing"}
        return self._result(latest, action, None, drift)

    def _expected_chart(self) -> str:
        return f"{self.env.chart.name}-{self.env.chart.version}"

    def _result(
        self,
        rev: dict[str, Any],
        action: ReleaseAction,
        recovered_from: str | None,
        drift: tuple[str, ...],
    ) -> InstallChartResult:
        revision = int(rev["revision"])
        if self.input.dry_run:
            now = f"now revision {revision}" if revision else "not installed"
            summary = "unchanged" if action == "unchanged" else f"would be {action} ({now})"
        else:
            summary = f"{action}, revision {revision}"
            if recovered_from:
                summary += f" (recovered from {recovered_from})"
            if self.policies:
                summary += f"; NetworkPolicies {', '.join(_counted(self.policies))}"
        return InstallChartResult(
            summary=summary,
            release=self.release,
            namespace=self.namespace,
            revision=revision,
            chart=str(rev.get("chart", "")),
            app_version=str(rev.get("app_version", "")),
            status=str(rev["status"]),
            changed=action != "unchanged" or recovered_from is not None or bool(self.policies),
            network_policies=tuple(f"{p.name} {p.action} ({p.why})" for p in self.policies),
            action=action,
            recovered_from=recovered_from,
            dry_run=self.input.dry_run,
            drift=tuple(
                DriftItem(
                    message=m,
                    kind="HelmRelease",
                    namespace=self.namespace,
                    name=self.release,
                    # With another chart deployed every difference (its values too) is the
                    # version skew's: only `upgrade` moves it (#20.2).
                    repairable=not self._version_drift,
                    version_skew=bool(self._version_drift),
                    how=version_skew_how(self.env) if self._version_drift else "",
                )
                for m in drift
            ),
        )

    # -- reading the release -------------------------------------------------------------
    def _quick(self, args: list[str], *, missing_ok: bool = False) -> Any:
        """A short read-only helm call (JSON), its failures classified; with `missing_ok`,
        None when the release does not exist."""
        what = f"helm {args[0]} of {self.where}"
        try:
            return self.helm.run_json([*args, "--namespace", self.namespace])
        except subprocess.TimeoutExpired:
            raise activity_error(f"{what} did not answer in time", ErrorType.HELM_FAILED) from None
        except HelmCommandFailed as exc:
            if missing_ok and "not found" in exc.stderr:
                return None
            raise self._classify(exc.stderr, what) from None
        except (OSError, ValueError) as exc:
            # helm vanished or cannot run any more, or printed something that is not JSON.
            raise activity_error(f"{what} failed: {exc}", ErrorType.HELM_FAILED) from None

    def _history(self) -> list[dict[str, Any]]:
        """Revisions oldest first; [] when the release does not exist."""
        found = self._quick(["history", self.release, "--max", "256"], missing_ok=True)
        return sorted(found or [], key=lambda h: int(h["revision"]))

    def _deployed_values(self) -> Any:
        return self._quick(["get", "values", self.release])

    # -- pending releases ----------------------------------------------------------------
    def _by_hand(self, history: list[dict[str, Any]]) -> str:
        """What an operator can run, once no helm works on the release, for the step to go
        on: a command that works on a real helm (never `helm rollback`: see the docstring)."""
        latest = history[-1] if history else None
        if latest is None or latest["status"] not in PENDING_STATES:
            return "retry (helm upgrades from the last deployed revision)"
        deployed = [h for h in history[:-1] if h["status"] == "deployed"]
        if latest["status"] == "pending-install" and not deployed:
            return f"helm uninstall {self.release} --namespace {self.namespace}, then retry"
        start = f"revision {deployed[-1]['revision']}" if deployed else "the revision before"
        record = record_name(self.release, int(latest["revision"]))
        return (
            f"kubectl delete secret {record} --namespace {self.namespace} (helm's record of "
            f"the abandoned revision {latest['revision']}; helm then upgrades from {start}), "
            "then retry"
        )

    def _stop_abandoned_helm(self) -> bool:
        """Stop the helm an earlier attempt (or a dead worker) left working on the release
        (True if there was one); refuse to go on while anybody else's helm works on it."""
        holders = self.helm.holders(self.namespace, self.release)
        abandoned = [h for h in holders if h.owner == self.owner or h.orphaned]
        for other in holders:
            if other in abandoned:
                continue
            who = (
                f"by a running temporal-bootstrap activity ({other.owner})"
                if other.owner
                else "outside temporal-bootstrap, so it is left alone"
            )
            raise activity_error(
                f"another helm (pid {other.pid}: {other.command}) is working on "
                f"{self.where}; it was started {who}. Wait for it to end (or stop it), "
                "then retry",
                ErrorType.HELM_RELEASE_PENDING,
            )
        for holder in abandoned:
            activity.logger.warning(
                "%s: stopping helm pid %s left by an earlier attempt: %s",
                self.where,
                holder.pid,
                holder.command,
            )
            self._heartbeat(f"stopping abandoned helm pid {holder.pid}")
            stop_pid(holder.pid, holder.start_time, timeout=TERMINATE_GRACE_S)
        return bool(abandoned)

    def _recover(self, history: list[dict[str, Any]], *, abandoned: bool = False) -> str:
        """Recover a release left pending by a dead helm (see the module docstring); returns
        its state. `abandoned`: the helm that left it was just stopped, so no grace period
        applies."""
        latest = history[-1]
        state, revision = str(latest["status"]), int(latest["revision"])
        updated = _parse_time(str(latest.get("updated", "")))
        age = (datetime.now(UTC) - updated) if updated else None
        grace = self.input.pending_grace
        if not abandoned and (age is None or age < grace):
            seen = f"{age.total_seconds():.0f}s ago" if age is not None else "at an unknown time"
            raise activity_error(
                f"{self.where} is {state} (revision {revision}, updated {seen}): another "
                f"helm operation may still be running. If none is, retry once it has been "
                f"pending for {grace.total_seconds():.0f}s (the step then recovers it), or "
                f"now: {self._by_hand(history)}",
                ErrorType.HELM_RELEASE_PENDING,
            )
        deployed = [h for h in history[:-1] if h["status"] == "deployed"]
        if state == "pending-install" and not deployed:
            what = f"uninstall abandoned {state} revision {revision}"
            activity.logger.warning("%s: %s", self.where, what)
            code, lines = self._stream(
                "recovering", ["uninstall", self.release, "--wait", *self._timeout_flags()]
            )
            if code != 0:
                raise activity_error(
                    f"{self.where} is {state} and could not be recovered ({what}): "
                    f"{error_message(lines)}. Fix the cause, then: {self._by_hand(history)}",
                    ErrorType.HELM_RELEASE_PENDING,
                )
            return state
        start = f"revision {deployed[-1]['revision']}" if deployed else "its latest state"
        what = f"mark abandoned {state} revision {revision} failed, to upgrade from {start}"
        activity.logger.warning("%s: %s", self.where, what)
        self._heartbeat("recovering")
        try:
            mark_failed(
                self.core,
                self.namespace,
                self.release,
                revision,
                f"{state} abandoned (helm killed); marked failed by temporal-bootstrap "
                f"({self.owner}) to upgrade from {start}",
            )
        except RecordChanged as exc:
            raise activity_error(
                f"{self.where}: {exc} (another helm works on it?); the step reads it again",
                ErrorType.HELM_FAILED,
            ) from None
        except (UnsupportedDriver, ValueError) as exc:
            raise activity_error(
                f"{self.where} is {state} and could not be recovered ({what}): {exc}. Once "
                f"no helm works on it: {self._by_hand(history)}",
                ErrorType.HELM_RELEASE_PENDING,
            ) from None
        except KUBERNETES_ERRORS as exc:
            raise kubernetes_error(f"{what} of {self.where}", exc) from None
        return state

    # -- upgrading -----------------------------------------------------------------------
    def _timeout_flags(self) -> list[str]:
        return ["--namespace", self.namespace, "--timeout", f"{self._timeout_s()}s"]

    def _timeout_s(self) -> int:
        return max(1, int(self.input.timeout.total_seconds()))

    def _upgrade(self, chart: str, chart_flags: list[str], values: dict[str, Any]) -> None:
        args = [
            "upgrade",
            "--install",
            self.release,
            chart,
            *chart_flags,
            "--values",
            "-",  # on stdin: no values file to leak when the worker is killed
            "--reset-values",
            *self.helm.apply_flags(),
            *self.helm.wait_flags(),
            *self._timeout_flags(),
            "--debug",  # progress lines for the heartbeats
        ]
        try:
            code, lines = self._stream("upgrading", args, stdin_text=yaml.safe_dump(values))
        except _PodsRefused as refused:
            raise activity_error(
                f"helm upgrade --install of {self.where} stopped: the cluster refuses the "
                f"release's pods, which no wait can change: {refused}. "
                + self._undo_refused_upgrade(),
                ErrorType.HELM_BAD_VALUES,
            ) from None
        if code != 0:
            raise self._classify("\n".join(lines), f"helm upgrade --install of {self.where}")

    def _stream(
        self, phase: str, args: list[str], stdin_text: str | None = None
    ) -> tuple[int, list[str]]:
        """Run helm, heartbeat with its latest line, terminate it if we are cancelled."""
        self._heartbeat(phase)
        try:
            proc = self.helm.start(
                args,
                holds=(self.namespace, self.release),
                owner=self.owner,
                stdin_text=stdin_text,
            )
        except OSError as exc:
            raise activity_error(
                f"helm {args[0]} of {self.where} did not start: {exc}", ErrorType.HELM_FAILED
            ) from None
        self.unready = []
        last_beat = last_look = time.monotonic()
        try:
            while True:
                code = proc.wait(timeout=1.0)
                if code is not None:
                    break
                line = proc.last_line
                rolling = "roll" in line.lower()
                now = time.monotonic()
                if phase == "upgrading" and not rolling and now - last_look >= POD_CHECK_EVERY_S:
                    last_look = now
                    self._look_at_pods()
                    if self.refused:
                        raise _PodsRefused("; ".join(self.refused))
                if now - last_beat >= HEARTBEAT_EVERY_S:
                    last_beat = now
                    detail = phase
                    if rolling:
                        detail = "rolling back"
                    elif "wait" in line.lower() or "not ready" in line.lower():
                        detail = f"{phase}: waiting for readiness"
                    self._heartbeat(detail, line, helm=(proc.proc.pid, proc.start_time))
                if activity.is_cancelled():
                    raise CancelledError()
        except BaseException:
            # Cancellation (raised into this thread or above), worker shutdown, anything:
            # never leave helm running behind us.
            with activity.shield_thread_cancel_exception():
                proc.terminate()
                activity.logger.warning(
                    "%s: helm %s stopped (pid %s)", self.where, phase, proc.proc.pid
                )
            raise
        proc.finish()
        return code, list(proc.stderr)

    def _look_at_pods(self) -> None:
        """Remember which of the release's pods are not ready, and why (best effort: a
        failed read keeps what was seen before)."""
        selector = f"app.kubernetes.io/instance={self.release}"
        try:
            found = unready_pods(self.core, self.namespace, selector)
            # helm's rollback deletes the pods it waited for; a look after that sees none,
            # and what kept them unready must outlive them. Pods there and all ready: clear.
            if (
                found
                or self.core.list_namespaced_pod(
                    self.namespace, label_selector=selector, limit=1
                ).items
            ):
                self.unready = found
            # Only admission refusals are final (a quota or a missing ServiceAccount may
            # clear while helm waits).
            self.refused = [
                r
                for r in refused_pods(self.core, self.namespace, selector)
                if "violates PodSecurity" in r
            ]
        except Exception as exc:  # noqa: BLE001 - a diagnosis, never the step's failure
            activity.logger.debug("%s: reading pods failed: %s", self.where, exc)

    def _undo_refused_upgrade(self) -> str:
        """helm was stopped mid-wait: put the release back where it was (rollback, or
        uninstall of a first install), as helm's own rollback on failure would have."""
        try:
            history = self._history()
            if history and history[-1]["status"] in PENDING_STATES:
                self._recover(history, abandoned=True)
            history = self._history()
        except ApplicationError as exc:
            return f"Putting the release back failed: {exc.message}"
        if not history:
            return "The first install was uninstalled again (nothing was deployed before)."
        latest = history[-1]
        return f"The release is back at revision {latest['revision']} ({latest['status']})."

    def _heartbeat(
        self, phase: str, last_line: str = "", helm: tuple[int, str | None] | None = None
    ) -> None:
        details: dict[str, Any] = {
            "phase": phase,
            "elapsed_s": round(time.monotonic() - self.started, 1),
            "last_line": last_line,
        }
        if self.unready:
            details["unready_pods"] = list(self.unready)
        if helm is not None:  # which helm works on the release, for people and `ps`
            details["helm_pid"], details["helm_start_time"] = helm
        activity.heartbeat(details)

    # -- errors --------------------------------------------------------------------------
    def _classify(self, output: str, what: str) -> ApplicationError:
        return helm_error(
            what,
            output,
            release=self.release,
            namespace=self.namespace,
            environment=self.env.name,
            timeout_s=self._timeout_s(),
            aftermath=self._after_failure,
        )

    def _after_failure(self, message: str) -> str:
        """Which pods were not ready and why, and where the release stands now."""
        pods = f"Pods not ready: {'; '.join(self.unready)}. " if self.unready else ""
        return pods + self._release_now(message)

    def _release_now(self, message: str) -> str:
        """Where the release stands now, read back (best effort)."""
        try:
            history = self._history()
        except ApplicationError:
            history = []
        now = (
            f" It is now at revision {history[-1]['revision']} ({history[-1]['status']})."
            if history
            else ""
        )
        if "error occurred while rolling back" in message or "error while uninstalling" in message:
            # Not pending: a retry's helm upgrade starts from the last deployed revision.
            return f"The automatic rollback failed too.{now} Fix the cause, then retry."
        if "has been uninstalled" in message:
            return "The first install was uninstalled again (nothing was deployed before)."
        if "rolled back" in message:
            return f"helm rolled {self.release} back to its previous revision.{now}"
        return now.strip()


__all__ = ["ChartInstaller", "InstallChartInput", "InstallChartResult"]
