"""The operator CLI (`python starter.py`, installed as `temporal-bootstrap`), shaped like
kopf's cli.py: a command parses its arguments, calls one operation (operations/), and maps
the outcome to text and an exit code. No module here imports workflows or activities
(tests/unit/test_architecture.py): which workflow an action goes to, the render and the
follow loop are the operations'.

- cli/app.py: the app, its usage text, the exit codes, shared options and helpers;
- cli/environment_files.py: validate, render, lock-charts, import-helmfile (no server);
- cli/runs.py: provision, status, the operator actions, upgrade;
- cli/drift.py: drift, schedule, approve-drift, unschedule;
- here: `main` (one command, its exit code; tests inject a client) and the console script.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import typer
from temporalio.client import Client

# Importing the command modules registers their commands on `app`, in the order --help
# lists them.
# isort: off
from cli import environment_files, runs, drift  # noqa: F401

# isort: on
from cli.app import EXIT_FAILED, EXIT_INVALID, EXIT_OK, CliState, CommandFailed, app, err
from operations.settings import ClientSettings


def _program_name() -> str:
    """What usage lines call the command: the installed script by its name, else starter.py."""
    invoked = os.path.basename(sys.argv[0]) if sys.argv else ""
    return invoked if invoked == "temporal-bootstrap" else "starter.py"


def main(
    argv: Sequence[str] | None = None,
    *,
    client: Client | None = None,
    settings: ClientSettings | None = None,
) -> int:
    """Run one command and return its exit code. `client`/`settings` can be injected (tests);
    otherwise the standard client settings are read once, here."""
    state = CliState(settings=settings, client=client)
    try:
        code = app(
            args=list(sys.argv[1:] if argv is None else argv),
            prog_name=_program_name(),
            obj=state,
            standalone_mode=False,
        )
    except typer.Exit as exc:
        return exc.exit_code
    except CommandFailed as exc:
        err.print(str(exc), markup=False, highlight=False)
        return exc.code
    except typer.Abort:
        err.print("aborted", markup=False)
        return EXIT_FAILED
    except typer.TyperException as exc:
        # Usage errors (unknown option, missing argument, bad value): typer's own exit code
        # would be 2, which means "waiting for an operator" here; they are invalid input.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(str(exc), markup=False, highlight=False)
        return EXIT_INVALID
    return code if isinstance(code, int) else EXIT_OK


def cli() -> NoReturn:
    """The console script: run, then end with the command's real status."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal SDK's runtime can abort at interpreter finalization (PyGILState_Release,
    # a known open SDK issue, exit 134): end with the command's real status instead.
    os._exit(code)
