"""update_schema: both Temporal databases to an upgrade hop's exact schema versions, by a
Kubernetes Job, verified against the databases.

The Job (`<release>-schema-update-<server>`, in the release's namespace) runs the admin-tools
image the hop's chart pins (`admintools.image` in its values, e.g.
`temporalio/admin-tools:1.27.2-tctl-1.18.2-cli-1.3.0` for chart 0.63.0; never a tag built
from the server version, which is missing from the registry for several releases) with the
environment's `images.admin_tools` override: one init container per store BELOW the hop's
target runs `temporal-sql-tool update-schema --schema-dir
/etc/temporal/schema/mysql/v8/<store>/versioned -v <target>` with the environment the
chart's own schema Job uses (`SQL_*`, the password from
the DB Secret's key for that store, TLS with the CA bundle mounted from its ConfigMap and
host verification on), then a `done` container. The password never enters the Job spec.
A store already at or past its target gets no container: the real tool is a no-op at the
target, but fails (exit 1, "start version ... must be less than end version") on a database
newer than `-v`, as a visibility store ahead of the hop would be (temporalio/temporal
tools/common/schema/updatetask.go, v1.25-v1.31).

Idempotent, and never two Jobs at once for a hop:
- the Job carries the activity execution that created it (workflow, run, activity id): a
  retry of the same activity (after a crash) finds it and waits for it again;
- a finished Job left by an earlier execution (an operator's retry after a failure, another
  run) is deleted and replaced; a running one is waited for, never killed mid-update;
- no Job is created when both databases are at the hop's versions already (or newer).

The database is the truth, not the Job's status: after the Job completes, `schema_version`
is read from both databases (over TLS, like the preflight); below the targets the step
fails for an operator, the Job kept for inspection. A failed Job's pod log tail is in the
message (the password redacted should the tool ever print it). Deployments are untouched
here: a hop that stops after this step leaves old binaries on a newer schema, which they
run fine with. The Job is deleted (with its pods) once the versions are verified.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from temporalio import activity

from activities.read_live_versions import SchemaReader
from adapters.clients import AwsClients, KubeClients
from adapters.errors import ErrorType, activity_error
from adapters.errors.kubernetes import KUBERNETES_ERRORS, kubernetes_error
from adapters.kube_objects import MANAGED_LABELS
from adapters.pod_status import pull_failures
from adapters.sources import read_db_passwords
from adapters.temporal_target import attempt_deadline
from contracts.update_schema import StoreSchemaChange, UpdateSchemaInput, UpdateSchemaResult
from declared_state.chart_values import CA_VOLUME_NAME
from declared_state.models import Environment
from declared_state.upgrade_path import Hop, hop_chart
from declared_state.versions import version_key

SCHEMA_DIRS = {"default": "temporal", "visibility": "visibility"}
CREATED_BY = "temporal-bootstrap/created-by"
LOG_TAIL_LINES = 20


def job_name(env: Environment, hop: Hop) -> str:
    return f"{env.kubernetes.release}-schema-update-{hop.server.replace('.', '-')}"


def admin_tools_image(env: Environment, hop: Hop) -> str:
    """The admin-tools image the hop's chart pins, the environment's overrides applied."""
    images = hop.images or env.images.resolve(
        hop_chart(env.chart, hop), declared=hop.chart == env.chart.version
    )
    if images.admin_tools is None:
        raise activity_error(
            f"chart {hop.chart} is not in the image table, so the admin-tools image its values "
            "pin is unknown: declare images.admin_tools (repository and tag) in the environment",
            ErrorType.CONFIGURATION_MISMATCH,
        )
    return images.admin_tools.reference


def _container(env: Environment, hop: Hop, store: str) -> k8s.V1Container:
    db, secret = env.database, env.database.kubernetes_secret
    database = db.default_store if store == "default" else db.visibility_store
    key = secret.default_store_key if store == "default" else secret.visibility_store_key
    target = hop.default_schema if store == "default" else hop.visibility_schema
    values = {
        "SQL_PLUGIN": "mysql8",
        "SQL_HOST": env.rds.endpoint,
        "SQL_PORT": str(env.rds.port),
        "SQL_DATABASE": database,
        "SQL_USER": db.user,
        "SQL_TLS": "true",
        "SQL_TLS_CA_FILE": env.ca_bundle.mount_path,
        "SQL_TLS_SERVER_NAME": env.db_tls_server_name,
        "SQL_TLS_DISABLE_HOST_VERIFICATION": "false",
    }
    variables = [k8s.V1EnvVar(name=n, value=v) for n, v in values.items()]
    variables.insert(
        5,
        k8s.V1EnvVar(
            name="SQL_PASSWORD",
            value_from=k8s.V1EnvVarSource(
                secret_key_ref=k8s.V1SecretKeySelector(name=secret.name, key=key)
            ),
        ),
    )
    return k8s.V1Container(
        name=f"update-{store}-store",
        image=admin_tools_image(env, hop),
        command=[
            "temporal-sql-tool",
            "update-schema",
            "--schema-dir",
            f"/etc/temporal/schema/mysql/v8/{SCHEMA_DIRS[store]}/versioned",
            "-v",
            target,
        ],
        env=variables,
        volume_mounts=[
            k8s.V1VolumeMount(
                name=CA_VOLUME_NAME,
                mount_path=env.ca_bundle.mount_path,
                sub_path=env.ca_bundle.key,
                read_only=True,
            )
        ],
        resources=k8s.V1ResourceRequirements(
            **env.services.admintools.resources.model_dump(exclude_none=True)
        ),
    )


def build_job(
    env: Environment, hop: Hop, created_by: str, stores: tuple[str, ...] = ("default", "visibility")
) -> k8s.V1Job:
    """The hop's schema Job, with an update-schema container for each of `stores`."""
    labels = {
        **MANAGED_LABELS,
        "app.kubernetes.io/instance": env.kubernetes.release,
        "app.kubernetes.io/component": "schema-update",
        "temporal-bootstrap/server-version": hop.server,
    }
    return k8s.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=k8s.V1ObjectMeta(
            name=job_name(env, hop), labels=labels, annotations={CREATED_BY: created_by}
        ),
        spec=k8s.V1JobSpec(
            # A failed update is for an operator to look at, not for Kubernetes to repeat.
            backoff_limit=0,
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=k8s.V1PodSpec(
                    restart_policy="Never",
                    init_containers=[_container(env, hop, s) for s in stores],
                    containers=[
                        k8s.V1Container(
                            name="done",
                            image=admin_tools_image(env, hop),
                            command=["sh", "-c", 'echo "schema updated"'],
                        )
                    ],
                    volumes=[
                        k8s.V1Volume(
                            name=CA_VOLUME_NAME,
                            config_map=k8s.V1ConfigMapVolumeSource(name=env.ca_bundle.config_map),
                        )
                    ],
                ),
            ),
        ),
    )


def _finished(job: Any) -> str | None:
    """ "Complete" / "Failed" from the Job's conditions, None while it runs."""
    for condition in (job.status and job.status.conditions) or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


class UpdateSchema:
    def __init__(self, aws: AwsClients, kube: KubeClients, schema_reader: SchemaReader):
        self._aws, self._kube, self._schema = aws, kube, schema_reader

    @activity.defn(name="update_schema")
    def update_schema(self, input: UpdateSchemaInput) -> UpdateSchemaResult:
        return _Update(self, input).run()


class _Update:
    """One execution of the step; holds what its calls share."""

    def __init__(self, owner: UpdateSchema, input: UpdateSchemaInput):
        self.owner, self.input = owner, input
        self.env, self.hop = input.environment, input.hop
        self.namespace = self.env.kubernetes.namespace
        self.name = job_name(self.env, self.hop)
        self.where = f"schema Job {self.namespace}/{self.name}"
        info = activity.info()
        self.me = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
        context = self.env.kubernetes.context
        try:
            self.batch = k8s.BatchV1Api(owner._kube.api_client(context))
            self.core = k8s.CoreV1Api(owner._kube.api_client(context))
        except KUBERNETES_ERRORS as exc:
            raise kubernetes_error(f"kube context {context or '(current)'}", exc) from None

    def run(self) -> UpdateSchemaResult:
        before: tuple[str | None, str | None] = (None, None)
        job = self._read()
        if job is not None and _finished(job) and self._created_by(job) != self.me:
            activity.logger.info("%s is left from an earlier attempt: replacing it", self.where)
            self._delete(wait=True)
            job = None
        if job is None:
            before = self.owner._schema.read_schema_versions(self.env)
            if self._at_target(before):
                return self._result("unchanged", before, before)
            if self.input.dry_run:
                return self._result("would update", before, before)
            job = self._create(self._below(before))
        elif self.input.dry_run:
            now = self.owner._schema.read_schema_versions(self.env)
            return self._result("would update", now, now)
        outcome = self._wait()
        if outcome == "Failed":
            raise activity_error(self._failure_message(), ErrorType.SCHEMA_UPDATE_FAILED)
        after = self.owner._schema.read_schema_versions(self.env)
        if not self._at_target(after):
            raise activity_error(
                f"{self.where} completed, but the databases say otherwise: "
                f"{self._versions(after)}, hop {self.hop.number} needs "
                f"{self.hop.default_schema} / {self.hop.visibility_schema}. The database is "
                f"the truth: inspect the Job (kubectl -n {self.namespace} logs job/{self.name} "
                "--all-containers) and the schema_update_history tables, then retry (a new Job "
                "runs) or abort",
                ErrorType.SCHEMA_UPDATE_FAILED,
            )
        self._delete(wait=False)
        return self._result("updated", before, after)

    # -- the Job -------------------------------------------------------------------------
    def _read(self) -> Any | None:
        try:
            return self.batch.read_namespaced_job(self.name, self.namespace)
        except KUBERNETES_ERRORS as exc:
            if isinstance(exc, ApiException) and exc.status == 404:
                return None
            raise kubernetes_error(f"reading {self.where}", exc) from None

    @staticmethod
    def _created_by(job: Any) -> str | None:
        return ((job.metadata and job.metadata.annotations) or {}).get(CREATED_BY)

    def _create(self, stores: tuple[str, ...]) -> Any:
        body = build_job(self.env, self.hop, self.me, stores)
        try:
            created = self.batch.create_namespaced_job(self.namespace, body)
        except KUBERNETES_ERRORS as exc:
            if isinstance(exc, ApiException) and exc.status == 409:
                activity.logger.info("%s was created concurrently; waiting for it", self.where)
                return self._read()
            raise kubernetes_error(f"creating {self.where}", exc, quote_server=True) from None
        activity.logger.info(
            "%s created: %s -> %s / %s",
            self.where,
            admin_tools_image(self.env, self.hop),
            self.hop.default_schema,
            self.hop.visibility_schema,
        )
        return created

    def _delete(self, wait: bool) -> None:
        """Delete the Job and its pods (Background: Jobs orphan their pods by default)."""
        try:
            self.batch.delete_namespaced_job(
                self.name, self.namespace, propagation_policy="Background"
            )
        except KUBERNETES_ERRORS as exc:
            if isinstance(exc, ApiException) and exc.status == 404:
                return
            raise kubernetes_error(f"deleting {self.where}", exc) from None
        deadline = time.monotonic() + 60
        while wait and self._read() is not None:
            if time.monotonic() > deadline:
                raise activity_error(
                    f"{self.where} is still there a minute after being deleted",
                    ErrorType.KUBERNETES_UNAVAILABLE,
                )
            time.sleep(0.5)

    def _wait(self) -> str:
        """ "Complete" or "Failed"; a Job still running when this attempt's time is up is a
        retryable error (the next attempt waits for the same Job)."""
        started = time.monotonic()
        # As long as this attempt may run; a Job that outlasts it is waited for by the next.
        deadline = attempt_deadline(timedelta(days=1))
        while True:
            job = self._read()
            if job is None:
                raise activity_error(
                    f"{self.where} disappeared before it finished (deleted by someone else?); "
                    "the step runs it again",
                    ErrorType.SCHEMA_JOB_RUNNING,
                )
            outcome = _finished(job)
            if outcome is None:
                self._raise_if_image_cannot_be_pulled()
            elapsed = round(time.monotonic() - started, 1)
            activity.heartbeat(
                {"phase": f"{self.name}: {outcome or 'running'}", "elapsed_s": elapsed}
            )
            if outcome is not None:
                return outcome
            if time.monotonic() >= deadline:
                raise activity_error(
                    f"{self.where} still running after {elapsed:.0f}s; waiting for it again",
                    ErrorType.SCHEMA_JOB_RUNNING,
                )
            time.sleep(
                min(self.input.poll_interval.total_seconds(), max(0.1, deadline - time.monotonic()))
            )

    def _raise_if_image_cannot_be_pulled(self) -> None:
        """A Job pod in ImagePullBackOff would wait out the whole deadline: report it now,
        naming the image (the Job is kept; kubelet keeps trying, so a retry after the image
        is pushed, or the registry reached, waits for the same Job)."""
        try:
            failures = pull_failures(self.core, self.namespace, f"job-name={self.name}")
        except KUBERNETES_ERRORS:
            return  # the Job's own status still decides; this is only a shortcut
        if failures:
            raise activity_error(
                f"{self.where} cannot start: {'; '.join(failures)}. Nothing was deployed and "
                "the schema is unchanged. Push or mirror the image (the hop's chart pins it; "
                "`python starter.py upgrade ENV --plan` lists it), or fix images.admin_tools "
                "and image_registry, then retry (or abort)",
                ErrorType.IMAGE_PULL_BACKOFF,
            )

    def _failure_message(self) -> str:
        container, code, tail = self._log_tail()
        return (
            f"{self.where} failed"
            + (f" in container {container} (exit {code})" if container else "")
            + f"; the last lines of its log:\n{tail}\n"
            f"Nothing was deployed: the Deployments still run {self.hop.from_server} (older "
            f"binaries run fine on a newer schema). Fix the cause, then retry (a new Job runs) "
            f"or abort; the failed Job stays for inspection (kubectl -n {self.namespace} "
            f"describe job/{self.name})"
        )

    def _log_tail(self) -> tuple[str | None, int | None, str]:
        """The failed container of the Job's newest pod, its exit code and its log tail."""
        try:
            found: Any = self.core.list_namespaced_pod(
                self.namespace, label_selector=f"job-name={self.name}"
            )
        except KUBERNETES_ERRORS as exc:
            return None, None, f"(no pod log: {type(exc).__name__})"
        pods: list[Any] = found.items or []
        if not pods:
            return None, None, "(the Job has no pod left to read a log from)"
        pod: Any = max(pods, key=lambda p: str(p.metadata.creation_timestamp or ""))
        statuses = [
            *(pod.status.init_container_statuses or []),
            *(pod.status.container_statuses or []),
        ]
        failed = next(
            (
                s
                for s in statuses
                if s.state and s.state.terminated and s.state.terminated.exit_code != 0
            ),
            None,
        )
        container = failed.name if failed is not None else None
        code = failed.state.terminated.exit_code if failed is not None else None
        try:
            log = self.core.read_namespaced_pod_log(
                pod.metadata.name,
                self.namespace,
                container=container or (statuses[-1].name if statuses else None),
                tail_lines=LOG_TAIL_LINES,
            )
        except KUBERNETES_ERRORS as exc:
            return container, code, f"(no log of pod {pod.metadata.name}: {type(exc).__name__})"
        return container, code, self._redacted(str(log).rstrip() or "(empty log)")

    def _redacted(self, text: str) -> str:
        try:
            passwords = read_db_passwords(self.env, self.owner._aws, self.owner._kube)
        except Exception:  # noqa: BLE001 - the tail is shown either way, redaction is extra care
            return text
        for secret in (passwords.default_store, passwords.visibility_store):
            if secret:
                text = text.replace(secret, "<redacted>")
        return text

    # -- versions ------------------------------------------------------------------------
    def _below(self, versions: tuple[str | None, str | None]) -> tuple[str, ...]:
        """The stores below the hop's targets (a missing version is below), in Job order."""
        targets = (self.hop.default_schema, self.hop.visibility_schema)
        return tuple(
            store
            for store, found, target in zip(
                ("default", "visibility"), versions, targets, strict=True
            )
            if found is None or version_key(found) < version_key(target)
        )

    def _at_target(self, versions: tuple[str | None, str | None]) -> bool:
        return not self._below(versions)

    def _versions(self, versions: tuple[str | None, str | None]) -> str:
        db = self.env.database
        return (
            f"{db.default_store} {versions[0] or 'missing'}, "
            f"{db.visibility_store} {versions[1] or 'missing'}"
        )

    def _result(
        self,
        action: Any,
        before: tuple[str | None, str | None],
        after: tuple[str | None, str | None],
    ) -> UpdateSchemaResult:
        db = self.env.database
        targets = (self.hop.default_schema, self.hop.visibility_schema)
        changes = [
            StoreSchemaChange(database=name, before=b, after=a or "", target=t)
            for name, b, a, t in zip(
                (db.default_store, db.visibility_store), before, after, targets, strict=True
            )
        ]
        if action == "unchanged":
            summary = f"already at {self._versions(after)}; no Job needed"
        elif action == "would update":
            summary = f"a Job would move {self._versions(before)} to {targets[0]} / {targets[1]}"
        else:
            summary = f"{self.name} moved the schema to {self._versions(after)}"
        return UpdateSchemaResult(
            job=self.name,
            namespace=self.namespace,
            image=admin_tools_image(self.env, self.hop),
            action=action,
            default_store=changes[0],
            visibility_store=changes[1],
            changed=action != "unchanged",
            summary=summary,
            dry_run=self.input.dry_run,
        )
