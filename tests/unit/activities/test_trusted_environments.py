"""#23.8: reading the worker's trusted environments folder, and what the check compares.
Files in a temporary folder only (no services)."""

from __future__ import annotations

import os
import typing

import pytest
import yaml

from activities.trusted_declarations import (
    TrustedEnvironments,
    TrustedFolderUnreadable,
)
from adapters.errors import ErrorType
from contracts.plan_upgrade import PlanUpgradeInput
from contracts.step_spec import activity_name
from contracts.trusted_declaration import UNTRUSTED_DECLARATION, declaration_digest
from declared_state.loader import load_environment
from declared_state.models import Environment
from tests.helpers import copy_environments
from workflows.bootstrap import BootstrapWorkflow
from workflows.drift_check import DriftCheckWorkflow
from workflows.upgrade import UpgradeWorkflow


def test_the_error_type_the_workflows_recognise_is_the_one_the_worker_raises():
    assert ErrorType.UNTRUSTED_DECLARATION.value == UNTRUSTED_DECLARATION


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: p / "absent", "does not exist"),
        (lambda p: (p / "file").write_text("x") and p / "file", "is not a folder"),
        (lambda p: p, "holds no environment files"),
    ],
)
def test_a_folder_the_worker_cannot_use_is_refused_in_one_line(tmp_path, make, why):
    folder = make(tmp_path)
    with pytest.raises(TrustedFolderUnreadable) as refused:
        TrustedEnvironments.from_environment(
            {"TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS": str(folder)}
        )
    message = str(refused.value)
    assert why in message and "\n" not in message
    assert message.startswith(f"TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS={folder}:")


def test_unset_or_empty_means_no_check():
    assert TrustedEnvironments.from_environment({}) is None
    assert (
        TrustedEnvironments.from_environment({"TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS": ""})
        is None
    )


def test_formatting_and_layering_do_not_count_content_does(tmp_path):
    trusted = TrustedEnvironments.load(copy_environments(tmp_path / "trusted"), os.environ)
    # The same declaration written otherwise: base.yaml's keys folded into staging.yaml,
    # another key order, comments gone.
    other = copy_environments(tmp_path / "operator")
    base = yaml.safe_load((other / "base.yaml").read_text())
    staging = yaml.safe_load((other / "staging.yaml").read_text())
    folded = {**base, **staging} if not set(base) & set(staging) else None
    if folded is not None:
        (other / "base.yaml").write_text("{}\n")
        (other / "staging.yaml").write_text(yaml.safe_dump(dict(reversed(folded.items()))))
    declared = load_environment("staging", other)
    assert trusted.refusal(declared) is None
    changed = declared.model_copy(update={"approval_required": not declared.approval_required})
    assert declaration_digest(changed) != declaration_digest(declared)
    assert "at approval_required" in (trusted.refusal(changed) or "")


def test_an_updated_trusted_copy_is_read_again_before_refusing(tmp_path):
    folder = copy_environments(tmp_path)
    trusted = TrustedEnvironments.load(folder, os.environ)
    staging = folder / "staging.yaml"
    data = yaml.safe_load(staging.read_text())
    data["approval_required"] = not load_environment("staging", folder).approval_required
    staging.write_text(yaml.safe_dump(data))  # the ConfigMap changed after the worker read it
    assert trusted.refusal(load_environment("staging", folder)) is None


def test_an_environment_whose_trusted_copy_does_not_load_is_named_and_refused(tmp_path):
    folder = copy_environments(tmp_path)
    (folder / "broken.yaml").write_text("rds: [\n")
    trusted = TrustedEnvironments.load(folder, os.environ)
    assert "broken: " in trusted.describe() and "staging (sha256:" in trusted.describe()
    declared = load_environment("staging", folder).model_copy(update={"name": "broken"})
    assert "trusted copy in" in (trusted.refusal(declared) or "")
    assert "does not load" in (trusted.refusal(declared) or "")


def test_every_activity_the_workflows_call_takes_the_declaration_it_acts_on():
    """The check reads each activity input's `environment`: a step whose input had none
    would run unchecked. The exceptions: the upgrade's plan (pure, no I/O: it reads the
    version tables for the chart the run's earlier, checked steps carried), and `notify`,
    whose webhooks come from the declaration a checked step carried first (every event
    follows a step's result or a wait after one; an untrusted run ends without notifying)."""
    unchecked = set()
    for workflow in (BootstrapWorkflow, DriftCheckWorkflow, UpgradeWorkflow):
        for reference in workflow.activity_references():
            (input_type,) = [
                t for name, t in typing.get_type_hints(reference).items() if name != "return"
            ]
            if input_type.model_fields.get("environment") is None or (
                input_type.model_fields["environment"].annotation is not Environment
            ):
                unchecked.add(activity_name(reference))
    assert unchecked == {"notify", "plan_upgrade"}, "a step's input must carry `environment`"
    assert "environment" not in PlanUpgradeInput.model_fields
