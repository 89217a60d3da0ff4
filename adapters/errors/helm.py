"""helm failures -> ErrorType, by patterns in helm's own `Error:` message.

helm has no error codes: every failure is exit status 1 and a message on stderr, which
`helm_cli.error_message` cuts out of the output (without v3's debug stack). `HELM_ERRORS`
are its rows, tried in order, first match wins:

- another operation holds the release (its lock is the `pending-*` status) ->
  HelmReleasePending, permanent: an operator must make sure no helm is running, then roll
  back; install_chart recovers releases left pending by a dead worker itself, before this;
- the readiness wait ran out (v3 `timed out waiting for the condition` or `context deadline
  exceeded`, v4's kstatus watcher `resource not ready` / `not ready. status:`) ->
  HelmTimeout, retryable: helm has rolled back (or uninstalled a first install), and the
  message says where the release stands now (`aftermath`, read back by the caller);
- the chart's templates or the API's validation refuse the values -> HelmBadValues,
  permanent: the environment file must change;
- anything else (the cluster unreachable, a hook failed, ...) -> `OTHER_ERROR`, HelmFailed,
  retryable.

A message can match more than one row (helm's messages quote what failed, templates and
lock messages included), so the order is part of the table: it is the order of the checks
it replaces, and the first match decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from temporalio.exceptions import ApplicationError

from adapters.errors import ErrorType, activity_error
from adapters.helm_cli import error_message


class HelmRow(NamedTuple):
    pattern: re.Pattern[str]
    error_type: ErrorType
    message: str
    """`str.format` template: {what}, {message} (helm's), {release}, {namespace},
    {environment}, {timeout_s} and {aftermath} (asked of the caller only when used)."""


HELM_ERRORS: tuple[HelmRow, ...] = (
    HelmRow(
        re.compile(r"another operation \(install/upgrade/rollback\) is in progress"),
        ErrorType.HELM_RELEASE_PENDING,
        "{what}: {message}. Another helm operation holds the release; if none is running, "
        "retry once it has been pending for the step's grace period: the step then marks "
        "the abandoned revision failed and upgrades from the last deployed one (helm "
        "rollback fails when the new chart drops objects). By hand: helm history {release} "
        "--namespace {namespace}, then kubectl delete secret "
        "sh.helm.release.v1.{release}.v<pending revision> --namespace {namespace}, and retry",
    ),
    HelmRow(
        re.compile(
            r"context deadline exceeded|timed out waiting for the condition|resource not ready|"
            r"\bnot ready\. status:",
            re.IGNORECASE,
        ),
        ErrorType.HELM_TIMEOUT,
        "{what} timed out after {timeout_s}s waiting for readiness: {message}. {aftermath}",
    ),
    HelmRow(
        re.compile(
            r"execution error at|template: |error calling include|"
            r"values don't meet the specifications|YAML parse error|error converting YAML|"
            r"unable to build kubernetes objects|error validating data|parse error",
            re.IGNORECASE,
        ),
        ErrorType.HELM_BAD_VALUES,
        "{what}: the chart rejected the values built from environment {environment!r}: {message}",
    ),
)
OTHER_ERROR = (ErrorType.HELM_FAILED, "{what} failed: {message}")
"""What matches no row."""


def helm_error(
    what: str,
    output: str,
    *,
    release: str,
    namespace: str,
    environment: str,
    timeout_s: int,
    aftermath: Callable[[str], str] = lambda message: "",
) -> ApplicationError:
    """The ApplicationError for helm's `output` (stderr) of a failed `what`.

    `aftermath(message)` says where the release stands after a failed wait (it reads the
    release back, so it is called only for a row whose message uses it).
    """
    message = error_message(output.splitlines())
    row = next((row for row in HELM_ERRORS if row.pattern.search(message)), None)
    error_type, template = (row.error_type, row.message) if row else OTHER_ERROR
    text = template.format(
        what=what,
        message=message,
        release=release,
        namespace=namespace,
        environment=environment,
        timeout_s=timeout_s,
        aftermath=aftermath(message) if "{aftermath}" in template else "",
    )
    return activity_error(text, error_type)
