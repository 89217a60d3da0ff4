"""The starter's commands in-process: `starter.main(argv, client=..., settings=...)` against a
real Temporal dev server, with the real workflows and the shared fake activities on a fresh
task queue. What an operator sees (output, exit codes) is checked command by command.

Each test provisions an environment of its own name (a copy of staging), so runs never meet.
The starter runs in a thread with its own event loop, as it does from a shell, while the
worker runs in the test's loop; both share the injected client.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import starter
from adapters.errors import ErrorType, activity_error
from contracts.bootstrap import BootstrapInput, BootstrapProgress, RunState
from declared_state.loader import load_environment
from operations import runs as run_ops
from operations.embedded import temporal_cli
from operations.settings import ClientSettings
from tests.helpers import MIRROR_CHARTS, assert_eventually, copy_environments, new_worker
from tests.helpers.fakes import StepFakes
from workflows.bootstrap import BootstrapWorkflow
from workflows.drift_check import DriftCheckWorkflow
from workflows.upgrade import UpgradeWorkflow

FRESH = ("ensure_ca_bundle", "install_chart", "register_namespaces")


@pytest.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=["--headless"],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def fakes() -> StepFakes:
    return StepFakes(missing=FRESH)


@pytest.fixture
async def worker(dev_server, fakes) -> AsyncIterator[Worker]:
    async with new_worker(
        dev_server.client,
        BootstrapWorkflow,
        DriftCheckWorkflow,
        UpgradeWorkflow,
        activities=fakes.all(),
    ) as w:
        yield w


class Cli:
    """Runs starter commands in-process and keeps what they printed."""

    def __init__(self, client: Client, task_queue: str, env_dir: Path, name: str, capsys):
        self.client, self.env_dir, self.name, self.capsys = client, env_dir, name, capsys
        self.settings = ClientSettings(task_queue=task_queue)

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        args = [a.replace("ENV", self.name) for a in argv]
        if args[0] in ("validate", "render", "provision", "drift", "schedule", "upgrade"):
            args += ["--environments-dir", str(self.env_dir)]
        code = await asyncio.to_thread(
            starter.main, args, client=self.client, settings=self.settings
        )
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    async def progress(self) -> BootstrapProgress:
        handle = self.client.get_workflow_handle_for(
            BootstrapWorkflow.run, f"provision-{self.name}"
        )
        return await handle.query(BootstrapWorkflow.progress)


@pytest.fixture
def cli(dev_server, worker, tmp_path, capsys) -> Cli:
    name = f"cli{uuid.uuid4().hex[:8]}"
    env_dir = copy_environments(tmp_path / "environments")
    shutil.copy(env_dir / "staging.yaml", env_dir / f"{name}.yaml")
    return Cli(dev_server.client, worker.task_queue, env_dir, name, capsys)


async def test_provision_follows_every_step_to_done(cli, fakes):
    code, out, _ = await cli("provision", "ENV", "--by", "alice")
    assert code == starter.EXIT_OK, out
    assert f"started provision-{cli.name}" in out
    assert (
        "new cluster's Web UI: https://temporal.staging.example.com, allowed from "
        "10.20.0.0/16, 192.168.10.0/24"
    ) in out
    for step in ("check_database", "ensure_ca_bundle", "install_chart", "register_namespaces"):
        assert f"✓ {step}" in out
    assert f"provision-{cli.name} done (changed)." in out

    again, out, _ = await cli("provision", "ENV")
    assert again == starter.EXIT_OK
    assert f"provision-{cli.name} done (nothing changed)." in out


async def test_a_failed_step_prints_the_actions_that_unblock_it_then_retry_completes(cli, fakes):
    fakes.failures["check_database"] = (
        1,
        activity_error("schema is 1.12, server needs 1.14", ErrorType.SCHEMA_OUTDATED),
    )
    code, out, _ = await cli("provision", "ENV")
    assert code == starter.EXIT_WAITING, out
    assert "SchemaOutdated: schema is 1.12, server needs 1.14" in out
    for action in ("retry", "skip", "abort"):
        assert f"python starter.py {action} {cli.name}" in out
        assert f"--workflow-id provision-{cli.name} --name {action}" in out
    assert "approve" not in out.split("unblock it with one of:")[1]

    status, out, _ = await cli("status", "ENV")
    assert status == starter.EXIT_WAITING
    assert "waiting for operator" in out

    code, out, _ = await cli("retry", "ENV", "--by", "dba", "--reason", "schema updated")
    assert code == starter.EXIT_OK, out
    assert f"provision-{cli.name} took retry: check_database runs again" in out
    check = (await cli.progress()).step("check_database")
    assert check.operator_actions == ("retry by dba: schema updated",)


async def test_a_waiting_dry_run_prints_commands_that_reach_it(cli, fakes):
    # The hints addressed provision-ENV, not provision-ENV-dry-run: "no such run" (#20.4).
    fakes.failures["check_database"] = (
        1,
        activity_error("schema is 1.12, server needs 1.14", ErrorType.SCHEMA_OUTDATED),
    )
    code, out, _ = await cli("provision", "ENV", "--dry-run")
    assert code == starter.EXIT_WAITING, out
    for action in ("retry", "skip", "abort"):
        assert f"python starter.py {action} {cli.name} --dry-run" in out, out
        assert f"--workflow-id provision-{cli.name}-dry-run --name {action}" in out

    status, out, _ = await cli("status", "ENV", "--dry-run")
    assert status == starter.EXIT_WAITING, out
    assert f"python starter.py retry {cli.name} --dry-run" in out

    code, out, err = await cli("retry", "ENV", "--dry-run", "--by", "dba")
    assert code == starter.EXIT_OK, out + err
    assert f"provision-{cli.name}-dry-run took retry: check_database runs again" in out


async def test_approval_gate_prints_approve_and_approve_completes(cli, fakes):
    local = cli.env_dir / f"{cli.name}.yaml"
    local.write_text(local.read_text() + "\napproval_required: true\n")
    code, out, _ = await cli("provision", "ENV")
    assert code == starter.EXIT_WAITING, out
    assert f"python starter.py approve {cli.name}" in out
    assert fakes.counts()["install_chart"] == 0

    code, out, _ = await cli("approve", "ENV", "--by", "carol")
    assert code == starter.EXIT_OK, out
    assert (await cli.progress()).approved_by == "carol"


async def test_abort_fails_the_run_and_exits_1(cli, fakes):
    fakes.failures["install_chart"] = (-1, activity_error("bad", ErrorType.HELM_BAD_VALUES))
    assert (await cli("provision", "ENV"))[0] == starter.EXIT_WAITING
    code, out, err = await cli("abort", "ENV", "--by", "dave")
    assert code == starter.EXIT_FAILED
    assert f"provision-{cli.name} failed: provisioning of {cli.name} aborted" in err
    assert (await cli.progress()).state == RunState.ABORTED


async def test_status_of_a_run_that_does_not_exist_exits_1_and_says_so(cli):
    code, _, err = await cli("status", "ENV")
    assert code == starter.EXIT_FAILED
    assert f"no provisioning run provision-{cli.name}" in err


async def test_status_of_an_upgrade_run_that_does_not_exist_names_an_upgrade_run(cli):
    # It said "no provisioning run upgrade-ENV" (#20.13).
    code, _, err = await cli("status", "ENV", "--upgrade")
    assert code == starter.EXIT_FAILED
    assert f"no upgrade run upgrade-{cli.name}" in err
    assert "provisioning" not in err


async def test_drift_reports_then_remediates(cli, fakes):
    assert (await cli("provision", "ENV"))[0] == starter.EXIT_OK
    fakes.drifted = {"install_chart"}
    code, out, _ = await cli("drift", "ENV", "--policy", "report")
    assert code == starter.EXIT_DRIFTED, out
    assert "≠ install_chart" in out and "values differ at: server.replicaCount" in out
    assert fakes.repairs().count("install_chart") == 1  # the provision only

    code, out, _ = await cli("drift", "ENV", "--policy", "remediate")
    assert code == starter.EXIT_OK, out
    assert f"{cli.name}: repaired (policy remediate)." in out
    assert fakes.repairs().count("install_chart") == 2


async def test_drift_ask_waits_then_approve_drift_repairs(cli, fakes):
    fakes.missing.clear()
    fakes.drifted = {"ensure_db_secret"}
    code, out, _ = await cli("drift", "ENV", "--policy", "ask")
    assert code == starter.EXIT_WAITING, out
    assert f"python starter.py approve-drift {cli.name}" in out

    async def approved() -> None:
        code, out, _ = await cli("approve-drift", "ENV", "--by", "oncall")
        assert code == starter.EXIT_OK, out

    await assert_eventually(approved, timeout=15, interval=0.5)  # visibility can lag a moment
    await assert_eventually(lambda: _repaired(fakes), timeout=15)


async def _repaired(fakes: StepFakes) -> None:
    assert fakes.repairs() == ["ensure_db_secret"]


async def test_schedule_is_created_updated_and_deleted(cli):
    code, out, _ = await cli("schedule", "ENV")
    assert code == starter.EXIT_OK, out
    assert f"schedule drift-check-{cli.name} created: drift check every 1h0m0s" in out
    code, out, _ = await cli("schedule", "ENV", "--policy", "remediate")
    assert f"schedule drift-check-{cli.name} updated" in out and "policy remediate" in out
    assert (await cli("unschedule", "ENV"))[1].strip() == f"schedule drift-check-{cli.name} deleted"
    code, out, _ = await cli("unschedule", "ENV")
    assert code == starter.EXIT_OK
    assert f"schedule drift-check-{cli.name} does not exist" in out


async def test_provision_says_a_public_plain_http_web_ui_before_it_starts(cli, fakes):
    local = cli.env_dir / f"{cli.name}.yaml"
    data = yaml.safe_load(local.read_text())
    data["web_ingress"] = {"host": "temporal.staging.example.com", "public": True}
    local.write_text(yaml.safe_dump(data))
    code, out, _ = await cli("provision", "ENV", "--no-wait")
    assert code == starter.EXIT_OK, out
    exposure = (
        "new cluster's Web UI: http://temporal.staging.example.com (PLAIN HTTP: no "
        "web_ingress.tls_secret), PUBLIC: no access control (web_ingress.public: true)"
    )
    assert out.index(exposure) < out.index(f"started provision-{cli.name}")


async def test_invalid_environment_exits_3_before_anything_starts(cli, fakes):
    local = cli.env_dir / f"{cli.name}.yaml"
    local.write_text(local.read_text() + "\nsurprise: 1\n")
    code, out, err = await cli("provision", "ENV")
    assert code == starter.EXIT_INVALID
    assert f"{local}: surprise: unknown key" in err
    assert fakes.calls == []


def declare_chart(cli: Cli, version: str, **extra: object) -> None:
    path = cli.env_dir / f"{cli.name}.yaml"
    data = yaml.safe_load(path.read_text())
    data["chart"] = {"version": version}
    data.update(extra)
    path.write_text(yaml.safe_dump(data))


async def test_upgrade_plan_prints_the_hops_and_exits_2_then_0_when_nothing_to_do(cli, fakes):
    declare_chart(cli, "0.63.0")
    code, out, _ = await cli("upgrade", "ENV", "--plan")
    assert code == starter.EXIT_WAITING, out
    assert f"Upgrade plan for {cli.name}: declared chart 0.63.0 (server 1.27.2)" in out
    assert "now: server 1.25.2, chart 0.52.0, schema temporal 1.14, temporal_visibility 1.6" in out
    table = [line.split() for line in out.splitlines() if line.startswith("  ")]
    assert [
        "1",
        "0.52.0",
        "->",
        "0.55.0",
        "1.25.2",
        "->",
        "1.26.2",
        "1.14",
        "(unchanged)",
        "1.6",
        "->",
        "1.7",
    ] in table
    assert [
        "2",
        "0.55.0",
        "->",
        "0.63.0",
        "1.26.2",
        "->",
        "1.27.2",
        "1.14",
        "->",
        "1.16",
        "1.7",
        "->",
        "1.9",
    ] in table
    assert "soak 5m." in out
    assert f"Plan: 2 hops to chart 0.63.0. Apply with: python starter.py upgrade {cli.name}" in out
    assert fakes.events == [], "a plan changes nothing"

    declare_chart(cli, "0.52.0")
    code, out, _ = await cli("upgrade", "ENV", "--plan")
    assert code == starter.EXIT_OK, out
    assert "No changes." in out


async def test_upgrade_plan_names_each_hops_admin_tools_image_as_its_chart_pins_it(cli, fakes):
    declare_chart(cli, "1.6.0")
    code, out, _ = await cli("upgrade", "ENV", "--plan")
    assert code == starter.EXIT_WAITING, out
    assert "Plan: 6 hops to chart 1.6.0" in out
    charts = MIRROR_CHARTS
    expected = []
    for chart in ("0.55.0", "0.63.0", "0.67.0", "0.73.2", "0.74.0", "1.6.0"):
        image = yaml.safe_load((charts / f"temporal-{chart}" / "values.yaml").read_text())[
            "admintools"
        ]["image"]
        expected.append(f"{image['repository']}:{image['tag']}")
    printed = [line.split()[1] for line in out.splitlines() if line.strip().startswith("admin-")]
    assert printed == expected
    assert "temporalio/admin-tools:1.27.2-tctl-1.18.2-cli-1.3.0" in printed


async def test_upgrade_applies_the_plan_and_names_the_snapshots(cli, fakes):
    declare_chart(cli, "0.63.0")
    code, out, _ = await cli("upgrade", "ENV", "--by", "alice")
    assert code == starter.EXIT_OK, out
    assert f"started upgrade-{cli.name}" in out
    assert "Plan: 2 hops" in out
    assert "✓ hop 2: update_schema" in out and "✓ hop 2: soak" in out
    assert f"upgrade-{cli.name} done: 2 hop(s), now chart 0.63.0, server 1.27.2" in out
    assert f"{cli.name}-before-temporal-1-27-2-chart-0-63-0" in out


async def test_a_refused_upgrade_exits_1_with_what_to_do(cli, fakes):
    fakes.live_server, fakes.live_chart = "1.27.2", "0.63.0"
    declare_chart(cli, "0.55.0")
    code, _, err = await cli("upgrade", "ENV", "--plan")
    assert code == starter.EXIT_FAILED
    assert "cannot be downgraded" in err


async def test_a_waiting_upgrade_is_steered_with_the_upgrade_option(cli, fakes):
    declare_chart(cli, "0.55.0", approval_required=True)
    code, out, _ = await cli("upgrade", "ENV")
    assert code == starter.EXIT_WAITING, out
    assert f"python starter.py approve {cli.name} --upgrade" in out
    assert f"--workflow-id upgrade-{cli.name} --name approve" in out
    assert "the cluster: server 1.25.2 (chart 0.52.0)" in out

    status, out, _ = await cli("status", "ENV", "--upgrade")
    assert status == starter.EXIT_WAITING
    assert "hop 1 of 1" in out

    code, out, _ = await cli("approve", "ENV", "--upgrade", "--by", "cab")
    assert code == starter.EXIT_OK, out
    assert f"upgrade-{cli.name} done: 1 hop(s)" in out


async def test_drift_groups_by_object_says_what_repairs_each_and_prints_json(cli, fakes):
    fakes.missing.clear()
    fakes.drifted = {"check_live_objects", "check_temporal"}
    fakes.stubborn = True
    code, out, _ = await cli("drift", "ENV", "--policy", "report")
    assert code == starter.EXIT_DRIFTED, out
    assert "≠ check_live_objects     drifted: 2 differences in 2 objects" in out
    assert "     Deployment temporal-frontend: 1 difference" in out
    assert "       /spec/replicas live 7, declared 1" in out
    assert "         repairable: no (helm keeps what no revision of the chart set" in out
    assert "     TemporalSchema temporal: 1 difference" in out
    assert "         repairable: no (temporal-sql-tool ... update-schema" in out

    code, out, err = await cli("drift", "ENV", "--policy", "report", "--output", "json")
    assert code == starter.EXIT_DRIFTED, err
    document = json.loads(out)  # stdout is the document alone; progress went to stderr
    assert f"drift check drift-check-{cli.name}" in err
    assert (document["environment"], document["state"], document["policy"]) == (
        cli.name,
        "drifted",
        "report",
    )
    replicas = document["records"][0]
    assert replicas == {
        "step": "check_live_objects",
        "status": "drifted",
        "kind": "Deployment",
        "namespace": "",
        "name": "temporal-frontend",
        "path": "/spec/replicas",
        "live": "7",
        "declared": "1",
        "ignored": False,
        "repairable": True,
        "how": "",
        "message": "Deployment temporal-frontend: /spec/replicas live 7, declared 1",
        "checked": True,
        "version_skew": False,  # added with #20.2: fields are only ever added
    }
    assert [(r["step"], r["kind"], r["repairable"]) for r in document["records"][1:]] == [
        ("check_live_objects", "Deployment", False),
        ("check_temporal", "TemporalSchema", False),
    ]

    # remediate re-applies once; what helm leaves is said, and the exit is 1, not success
    code, out, _ = await cli("drift", "ENV", "--policy", "remediate")
    assert code == starter.EXIT_FAILED, out
    assert fakes.reapplied == 1
    assert (
        "✗ check_live_objects     not restored: 1 difference in 1 object "
        "(install_chart did: upgraded, revision 1)"
    ) in out
    assert "1 difference(s) left after the repair" in out
    assert f"{cli.name}: repair failed (policy remediate)." in out


# --- issue #10: operator input that never sticks a run, stale declarations ------------


async def test_a_malformed_signal_leaves_status_and_abort_working(cli, fakes, dev_server):
    """Item 1: `temporal workflow signal --name retry` with two inputs used to fail every
    workflow task: status then blamed a missing worker and abort never returned."""
    fakes.failures["check_database"] = (-1, activity_error("old", ErrorType.SCHEMA_OUTDATED))
    assert (await cli("provision", "ENV"))[0] == starter.EXIT_WAITING
    sent = await asyncio.to_thread(
        subprocess.run,
        [
            str(Path(sys.executable).parent / "temporal"),
            "workflow",
            "signal",
            "--address",
            dev_server.client.service_client.config.target_host,
            "--workflow-id",
            f"provision-{cli.name}",
            "--name",
            "retry",
            "--input",
            '{"by": "a"}',
            "--input",
            '{"by": "b"}',
        ],
        capture_output=True,
        text=True,
    )
    assert sent.returncode == 0, sent.stderr

    async def refused_is_shown() -> str:
        code, out, err = await cli("status", "ENV")
        assert code == starter.EXIT_WAITING, out + err
        assert "refused signal 'retry'" in out, out
        return out

    out = await assert_eventually(refused_is_shown, timeout=20, interval=0.5)
    assert "payload refused: 2 inputs were sent" in out

    code, _, err = await asyncio.wait_for(cli("abort", "ENV", "--by", "ops"), timeout=60)
    assert code == starter.EXIT_FAILED
    assert f"provisioning of {cli.name} aborted" in err


async def test_an_action_the_run_cannot_take_exits_3_with_what_it_waits_for(cli, fakes):
    """Item 2: an action the run refuses is an update refusal, not a silent no-op."""
    local = cli.env_dir / f"{cli.name}.yaml"
    local.write_text(local.read_text() + "\napproval_required: true\n")
    assert (await cli("provision", "ENV"))[0] == starter.EXIT_WAITING

    code, out, err = await cli("retry", "ENV", "--by", "dba")
    assert code == starter.EXIT_INVALID, out + err
    assert err.strip() == (
        f"provision-{cli.name} refused retry: retry is not possible now: it waits for: "
        "approval before install_chart: send `approve`; it takes: approve, abort"
    )
    code, out, _ = await cli("approve", "ENV", "--by", "carol", "--no-wait")
    assert code == starter.EXIT_OK
    assert f"provision-{cli.name} took approve: the approval gate opens" in out
    code, _, err = await cli("approve", "ENV", "--by", "carol")
    assert code == starter.EXIT_INVALID
    # The gate is open, so the run refuses a second approve; with the fakes it may also have
    # finished already (a busy machine lets it), which the starter says instead.
    assert (
        "refused approve" in err
        or f"provision-{cli.name} has already ended; approve was not sent" in err
    ), err


async def test_an_action_no_worker_takes_ends_in_bounded_time(cli, dev_server, monkeypatch):
    """Every starter wait has a bound: an action nobody can take (no worker on the run's
    task queue) ends with what to start instead of hanging."""
    monkeypatch.setattr(run_ops, "ACTION_TIMEOUT", timedelta(seconds=3))
    nobody = f"tq-nobody-{uuid.uuid4()}"
    await dev_server.client.start_workflow(
        BootstrapWorkflow.run,
        BootstrapInput(
            environment=load_environment("staging").model_copy(update={"name": cli.name})
        ),
        id=f"provision-{cli.name}",
        task_queue=nobody,
    )
    code, _, err = await asyncio.wait_for(cli("abort", "ENV"), timeout=60)
    assert code == starter.EXIT_FAILED
    assert "no worker answers abort" in err and "abort was not applied" in err


@workflow.defn(name="BootstrapWorkflow", sandboxed=False)
class BrokenBootstrap:
    """A BootstrapWorkflow whose every workflow task fails (as a bug would make it)."""

    @workflow.run
    async def run(self, input: BootstrapInput) -> None:
        raise RuntimeError("a bug in the workflow code")


async def test_status_of_a_run_whose_workflow_task_fails_does_not_blame_a_missing_worker(
    cli, dev_server
):
    async with new_worker(dev_server.client, BrokenBootstrap) as broken:
        cli.settings = ClientSettings(task_queue=broken.task_queue)
        await dev_server.client.start_workflow(
            BootstrapWorkflow.run,
            BootstrapInput(
                environment=load_environment("staging").model_copy(update={"name": cli.name})
            ),
            id=f"provision-{cli.name}",
            task_queue=broken.task_queue,
        )

        async def stuck() -> str:
            code, out, err = await cli("status", "ENV")
            assert code == starter.EXIT_FAILED and "workflow task has failed" in err, err
            return err

        err = await assert_eventually(stuck, timeout=40, interval=1)
    assert "a worker runs but cannot process the run; the worker's log says why" in err
    assert "no worker answers" not in err


def _set_port(env_dir: Path, name: str, port: int) -> None:
    """What an operator does after the error message: correct rds.port in the file."""
    path = env_dir / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    data["rds"]["port"] = port
    path.write_text(yaml.safe_dump(data, sort_keys=False))


async def test_provision_with_a_changed_declaration_says_what_differs_and_offers_two_ways(
    cli, fakes
):
    """Item 3: provision used to attach to the waiting run and keep its old declaration."""
    _set_port(cli.env_dir, cli.name, 3307)
    fakes.failures["check_database"] = (
        -1,
        activity_error("port 3307 refused", ErrorType.CONFIGURATION_MISMATCH),
    )
    assert (await cli("provision", "ENV"))[0] == starter.EXIT_WAITING
    _set_port(cli.env_dir, cli.name, 3306)
    code, out, _ = await cli("provision", "ENV")
    assert code == starter.EXIT_WAITING, out
    assert f"provision-{cli.name} is going with another declaration" in out
    assert "  rds.port: 3307 -> 3306" in out
    assert "--update-run" in out and "--restart" in out
    assert fakes.counts()["check_database"] == 1, "nothing may run before the operator chose"

    fakes.failures.pop("check_database")
    code, out, _ = await cli("provision", "ENV", "--update-run", "--by", "dba")
    assert code == starter.EXIT_OK, out
    assert "check_database runs again with the new declaration (changed: rds.port)" in out
    check = (await cli.progress()).step("check_database")
    assert check.operator_actions == (
        "declaration replaced by dba: rds.port",
        "retry by dba",
    )
    assert [i.environment.rds.port for i in fakes.inputs["check_database"]] == [3307, 3306]
    assert [i.environment.rds.port for i in fakes.inputs["install_chart"]] == [3306]


async def test_provision_update_run_at_the_approval_gate_asks_for_approval_again(cli, fakes):
    # The gate is the natural moment to fix a declaration; --update-run was offered there
    # and then refused ("a new declaration is not possible now", #20.5).
    local = cli.env_dir / f"{cli.name}.yaml"
    local.write_text(local.read_text() + "\napproval_required: true\n")
    _set_port(cli.env_dir, cli.name, 3307)
    assert (await cli("provision", "ENV"))[0] == starter.EXIT_WAITING
    _set_port(cli.env_dir, cli.name, 3306)
    code, out, _ = await cli("provision", "ENV")
    assert code == starter.EXIT_WAITING and "--update-run" in out, out

    code, out, err = await cli("provision", "ENV", "--update-run", "--by", "dba")
    assert code == starter.EXIT_WAITING, out + err
    assert "approval is asked again with the new declaration (changed: rds.port)" in out
    assert f"python starter.py approve {cli.name}" in out.split("unblock it with one of:")[1]
    progress = await cli.progress()
    assert progress.approved_by is None
    assert progress.step("approval").operator_actions == ("declaration replaced by dba: rds.port",)
    assert fakes.counts()["install_chart"] == 0

    code, out, _ = await cli("approve", "ENV", "--by", "carol")
    assert code == starter.EXIT_OK, out
    assert [i.environment.rds.port for i in fakes.inputs["install_chart"]] == [3306]
    assert fakes.counts()["check_database"] == 1, "steps already done are kept"


async def test_provision_restart_aborts_the_waiting_run_and_starts_a_new_one(cli, fakes):
    _set_port(cli.env_dir, cli.name, 3307)
    fakes.failures["check_database"] = (
        1,
        activity_error("port 3307 refused", ErrorType.CONFIGURATION_MISMATCH),
    )
    assert (await cli("provision", "ENV"))[0] == starter.EXIT_WAITING
    first = await cli.client.get_workflow_handle(f"provision-{cli.name}").describe()
    _set_port(cli.env_dir, cli.name, 3306)
    code, out, _ = await cli("provision", "ENV", "--restart", "--by", "dba")
    assert code == starter.EXIT_OK, out
    assert f"aborted run {first.run_id} of provision-{cli.name} (another declaration)" in out
    assert f"started provision-{cli.name}" in out
    old = cli.client.get_workflow_handle(f"provision-{cli.name}", run_id=first.run_id)
    assert (await old.describe()).status == WorkflowExecutionStatus.FAILED
    assert [i.environment.rds.port for i in fakes.inputs["check_database"]] == [3307, 3306]


async def test_following_a_run_shows_a_signal_it_refused(cli, fakes):
    fakes.hold["check_database"] = asyncio.Event()
    following = asyncio.create_task(cli("provision", "ENV"))
    handle = cli.client.get_workflow_handle_for(BootstrapWorkflow.run, f"provision-{cli.name}")

    async def running() -> None:
        try:
            progress = await handle.query(BootstrapWorkflow.progress)
        except RPCError as exc:  # not started yet
            raise AssertionError(exc) from None
        assert progress.step("check_database").status.value == "running"

    await assert_eventually(running, timeout=20, interval=0.2)
    await asyncio.sleep(1.5)  # the follower has seen the run before the signal
    await handle.signal("approv", {"by": "x"})  # by name: a misspelt one, as typed by hand

    async def refused_seen() -> None:
        assert (await handle.query(BootstrapWorkflow.progress)).refused

    await assert_eventually(refused_seen, timeout=10, interval=0.2)
    await asyncio.sleep(1.5)
    fakes.hold["check_database"].set()
    code, out, _ = await following
    assert code == starter.EXIT_OK, out
    assert "refused signal 'approv'" in out and "did you mean approve?" in out


async def test_a_run_whose_declaration_this_version_cannot_read_is_not_attached_to(cli, dev_server):
    """A run started by another version (its input has a key this model does not know):
    provision cannot compare, so it asks instead of attaching."""
    older = load_environment("staging").model_dump(mode="json", by_alias=True)
    older.update(name=cli.name, retired_setting=True)
    await dev_server.client.start_workflow(
        "BootstrapWorkflow",
        {"environment": older},
        id=f"provision-{cli.name}",
        task_queue=f"tq-nobody-{uuid.uuid4()}",
    )
    code, out, err = await cli("provision", "ENV")
    assert code == starter.EXIT_WAITING, out + err
    assert "everything: its declaration cannot be read by this version" in out
    assert "--restart" in out


@pytest.mark.parametrize("command", ["provision", "drift"])
async def test_following_ends_when_the_run_ends_not_a_poll_interval_later(
    cli, fakes, monkeypatch, command
):
    # Polls two minutes apart: a starter that only polls would sit out the pause after the
    # run ends; racing the pause with the run's close returns when the run answers.
    monkeypatch.setattr(run_ops, "FIRST_POLL_INTERVAL", 120.0)
    monkeypatch.setattr(run_ops, "POLL_INTERVAL", 120.0)
    if command == "drift":
        assert (await cli("provision", "ENV"))[0] == starter.EXIT_OK
        fakes.drifted = {"install_chart"}
    held = {"provision": "check_database", "drift": "install_chart"}[command]
    fakes.hold[held] = release = asyncio.Event()
    following = asyncio.create_task(cli(command, "ENV"))
    await asyncio.sleep(2)  # the starter has started the run and seen it running (held)
    assert not following.done()

    release.set()
    code, out, _ = await asyncio.wait_for(asyncio.shield(following), 30)

    expected = {"provision": starter.EXIT_OK, "drift": starter.EXIT_DRIFTED}[command]
    assert code == expected, out
    assert ("done (changed)." if command == "provision" else "drifted (policy") in out
