"""check_temporal: the running Temporal cluster against the declaration, which no GitOps tool
sees. Read-only; the drift check runs it last.

- Frontend health: the gRPC health check of the frontend (as wait_frontend_healthy asks it).
  Not SERVING is drift, and what follows cannot be asked of the cluster ("could not check").
- Server version: what the frontend reports (GetSystemInfo) against the version the declared
  chart deploys. Repaired by `starter.py upgrade ENV` (schema first, then the chart), never
  by remediate.
- History shards: the cluster's count (GetClusterInfo: the one persisted at the first
  install; a server ignores another value in its config) against `numHistoryShards` in the
  config the declared chart renders. It can never change: the declaration must go back.
- Schema versions: both databases' `schema_version` (read as check_database reads them)
  against what the running server needs (the declared one's needs when the frontend cannot
  be asked). An older schema keeps a restarted server from starting; the finding carries
  the `temporal-sql-tool` commands.

Every finding is a DriftItem with `repairable: false` and `how` naming the command that
repairs it. What cannot be read (a frontend that does not answer, the database refusing the
login) is `unchecked`, never in sync and never drift: a frontend that answers its health
check with anything but SERVING is drift, one that does not answer at all (frozen, no pod, a
Kubernetes API too slow for the port-forward) is "could not check", because a script acting
on "drifted" would repair what nobody saw. The server-info read is `temporal_target.read_server_info`.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.check_database import DatabasePreflight, schema_problems
from activities.check_live_objects import rendered_objects
from activities.install_chart import ChartInstaller
from activities.wait_frontend_healthy import health_check
from adapters.errors.temporal_rpc import rpc_answer
from adapters.temporal_target import (
    FrontendConnection,
    FrontendUnreachable,
    ServerInfo,
    TargetTemporalClients,
    read_server_info,
)
from contracts.base import DriftItem
from contracts.check_database import StoreSchema
from contracts.check_temporal import CheckTemporalInput, CheckTemporalResult
from declared_state.models import Environment
from declared_state.versions import parse_version, schema_versions_for_server

RPC_TIMEOUT = timedelta(seconds=10)
HEALTH_BUDGET_S = 10.0
_SHARDS = re.compile(r"^\s*numHistoryShards:\s*(\d+)\s*$", re.MULTILINE)


def declared_history_shards(manifest: str, namespace: str) -> int | None:
    """`numHistoryShards` of the server config in a rendered manifest (the ConfigMap the
    server pods mount); None when the manifest has none."""
    for obj in rendered_objects(manifest, namespace):
        if obj.get("kind") != "ConfigMap":
            continue
        for text in (obj.get("data") or {}).values():
            match = _SHARDS.search(str(text))
            if match:
                return int(match.group(1))
    return None


class _Findings:
    def __init__(self, env: Environment):
        self.env = env
        self.drift: list[DriftItem] = []
        self.unchecked: list[DriftItem] = []

    def add(
        self,
        kind: str,
        name: str,
        path: str,
        live: str,
        declared: str,
        message: str,
        how: str,
        *,
        version_skew: bool = False,
    ) -> None:
        self.drift.append(
            DriftItem(
                message=message,
                kind=kind,
                namespace=self.env.kubernetes.namespace,
                name=name,
                path=path,
                live=live,
                declared=declared,
                repairable=False,
                how=how,
                version_skew=version_skew,
            )
        )

    def cannot(self, kind: str, name: str, message: str, path: str = "", how: str = "") -> None:
        self.unchecked.append(
            DriftItem(
                message=message,
                kind=kind,
                namespace=self.env.kubernetes.namespace,
                name=name,
                path=path,
                repairable=False,
                how=how,
            )
        )


class TemporalCheck:
    """The step, bound to the worker's frontend connections, database preflight and helm."""

    def __init__(
        self,
        target: TargetTemporalClients,
        preflight: DatabasePreflight,
        installer: ChartInstaller,
    ):
        self._target = target
        self._preflight = preflight
        self._installer = installer

    @activity.defn(name="check_temporal")
    async def check_temporal(self, input: CheckTemporalInput) -> CheckTemporalResult:
        env = input.environment
        found = _Findings(env)
        manifest = await asyncio.to_thread(self._installer.render, env)
        shards_declared = declared_history_shards(manifest, env.kubernetes.namespace)
        async with self._target.connect(env) as frontend:
            target = frontend.target
            health = await health_check(frontend, HEALTH_BUDGET_S)
            serving = health == "SERVING"
            info = await self._server_info(frontend, found, target) if serving else None
        if health != "SERVING":
            self._frontend_down(env, found, target, health)
        declared_version = env.chart.target_server_version
        if info is not None:
            self._compare_version(env, found, info.version, declared_version)
            self._compare_shards(env, found, info.history_shards, shards_declared)
        schemas = await self._schemas(env, found, info)
        differences = len(found.drift)
        summary = (
            f"frontend {health}"
            + (f", server {info.version}, {info.history_shards} history shards" if info else "")
            + (f"; {differences} difference(s)" if differences else "; in sync")
            + (f", {len(found.unchecked)} could not be checked" if found.unchecked else "")
        )
        activity.logger.info("%s: %s", env.name, summary)
        return CheckTemporalResult(
            frontend=target,
            health=health,
            server_version=info.version if info else None,
            declared_server_version=declared_version,
            history_shards=info.history_shards if info else None,
            declared_history_shards=shards_declared,
            schemas=schemas,
            changed=False,
            summary=summary,
            drift=tuple(found.drift),
            unchecked=tuple(found.unchecked),
            dry_run=input.dry_run,
        )

    @staticmethod
    async def _server_info(
        frontend: FrontendConnection, found: _Findings, target: str
    ) -> ServerInfo | None:
        try:
            client = await frontend.client(timeout=RPC_TIMEOUT.total_seconds())
            return await read_server_info(client, RPC_TIMEOUT)
        except FrontendUnreachable as exc:
            why = exc.reason
        except RPCError as exc:
            why = rpc_answer(exc)
        found.cannot(
            "TemporalServer",
            found.env.kubernetes.release,
            f"server version and history shards: could not check: frontend {target} did not "
            f"answer GetSystemInfo/GetClusterInfo ({why})",
        )
        return None

    @staticmethod
    def _frontend_down(env: Environment, found: _Findings, target: str, health: str) -> None:
        k8s = env.kubernetes
        pods = (
            f"kubectl -n {k8s.namespace} get pods -l app.kubernetes.io/instance={k8s.release},"
            "app.kubernetes.io/component=frontend"
        )
        how = (
            f"find out why the frontend does not serve: {pods}; kubectl -n {k8s.namespace} "
            f"logs deployment/{k8s.release}-frontend"
        )
        unreachable = health.removeprefix("unreachable: ")
        if unreachable != health:
            # No answer is not an answer: a frozen frontend, a Kubernetes API too slow for the
            # port-forward, a network path down. Nothing was read that could differ (#20.1).
            found.cannot(
                "TemporalFrontend",
                target,
                f"frontend health: could not check: Temporal frontend {target} did not answer "
                f"({unreachable})",
                path="/health",
                how=how,
            )
        else:
            # The frontend answered, and said it does not serve: that is drift.
            found.add(
                "TemporalFrontend",
                target,
                "/health",
                health,
                "SERVING",
                f"Temporal frontend {target}: {health}, not SERVING",
                how,
            )
        found.cannot(
            "TemporalServer",
            k8s.release,
            "server version and history shards: could not check: the frontend does not serve",
        )

    @staticmethod
    def _compare_version(env: Environment, found: _Findings, live: str, declared: str) -> None:
        try:
            older = parse_version(live) < parse_version(declared)
        except ValueError:
            older = None
        if live == declared:
            return
        chart = f"chart {env.chart.name} {env.chart.version}"
        if older:
            how = f"python starter.py upgrade {env.name} (schema first, then the chart)"
        else:
            how = (
                f"the cluster runs a server the declared {chart} does not deploy: declare the "
                f"chart that deploys {live} (a downgrade is not supported), then run "
                f"python starter.py upgrade {env.name} --plan"
            )
        found.add(
            "TemporalServer",
            env.kubernetes.release,
            "/serverVersion",
            live,
            declared,
            f"Temporal server: the frontend reports {live}, the declared {chart} deploys "
            f"{declared}",
            how,
            version_skew=True,
        )

    @staticmethod
    def _compare_shards(
        env: Environment, found: _Findings, live: int, declared: int | None
    ) -> None:
        if declared is None:
            found.cannot(
                "TemporalServer",
                env.kubernetes.release,
                "numHistoryShards: could not check: the rendered chart has no server config "
                "with numHistoryShards",
            )
            return
        if live == declared:
            return
        found.add(
            "TemporalServer",
            env.kubernetes.release,
            "/numHistoryShards",
            str(live),
            str(declared),
            f"Temporal server: the cluster runs {live} history shards, the declaration "
            f"renders numHistoryShards {declared}",
            f"numHistoryShards can never change after the first install (the servers ignore "
            f"the new value and keep {live}): declare numHistoryShards {live} again in "
            f"environment {env.name} (extra_values)",
        )

    async def _schemas(
        self, env: Environment, found: _Findings, info: ServerInfo | None
    ) -> tuple[StoreSchema, ...]:
        server = env.chart.target_server_version
        if info is not None and schema_versions_for_server(info.version) is not None:
            server = info.version  # what the running servers need
        try:
            readings = await asyncio.to_thread(self._preflight.read_schemas, env, server)
        except ApplicationError as exc:
            found.cannot(
                "TemporalSchema",
                "",
                f"schema versions: could not check: {exc.message}",
            )
            return ()
        for problem in schema_problems(env, readings):
            found.add(
                "TemporalSchema",
                problem.database,
                "/curr_version",
                problem.found or "(none)",
                problem.required,
                f"schema of database {problem.database}: {problem.problem}",
                "; ".join(problem.commands)
                or "inspect its schema_version and schema_update_history tables",
            )
        return tuple(
            StoreSchema(database=s.database, found=r.version or "", required=s.required)
            for s, r in zip(readings.stores, readings.readings, strict=True)
        )
