"""The worker's trusted environments (#23.8): with `TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS`
set to a folder of environment files (a mounted ConfigMap, a git checkout), every activity
whose input carries a declaration (`environment`) first compares it with the worker's own
copy of that environment and refuses a different one, before the activity reads or writes
anything. Without the setting nothing is checked.

Why every activity and not one extra first step: the check must hold whatever starts or
steers a run. A run started through the Temporal API with a declaration of its own is
refused by its first step (check_images for a provision, read_live_versions for an upgrade,
the dry runs of a drift check), and a declaration handed over mid-run (`redeclare`) is
refused by the next step it reaches, so no step ever writes with a declaration the worker
cannot vouch for. The check is the activity's own first statement (an activity interceptor
the worker installs), so it is the worker's I/O, recorded in the history as that step's
failure: `UntrustedDeclaration`, non-retryable; the workflows end the run with it instead of
waiting for an operator (no retry of the same declaration can succeed). No workflow command
changed, so no replay marker was needed: no history recorded before this release holds that
error type.

The comparison is by content (contracts/trusted_declaration.py): both sides are the
validated model, so formatting, comments, key order and base.yaml layering never count;
`${VAR}` references are interpolated with the worker's own variables and relative file
paths made absolute against the trusted folder, so a declaration naming files elsewhere
than the worker's copy does is refused (the worker would read other files). The refusal
names key paths (`temporal_namespaces[1]`, `extra_values.server`), never values.

The folder is read at start (the worker names what it loaded, and refuses to start on a
folder it cannot read or that holds no environment). An environment whose trusted copy does
not load (a `${VAR}` this worker lacks, say) is named at start and every run of it is
refused with that reason. A declaration that differs from the copy read at start makes the
worker read that one environment again before refusing, so an updated ConfigMap or a pulled
checkout is honoured without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from adapters.errors import ErrorType, activity_error
from contracts.bootstrap import declaration_changes
from contracts.trusted_declaration import declaration_digest
from declared_state.loader import (
    BASE_FILE,
    InvalidEnvironment,
    available_environments,
    load_environment,
)
from declared_state.models import Environment

TRUSTED_ENVIRONMENTS_VARIABLE = "TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS"

log = logging.getLogger("temporal-bootstrap.trusted")


class TrustedFolderUnreadable(Exception):
    """The trusted environments folder cannot be used; the message is one line."""


def _one_line(exc: InvalidEnvironment) -> str:
    first = str(exc.problems[0]) if exc.problems else str(exc)
    more = len(exc.problems) - 1
    return " ".join(first.split()) + (f" (and {more} more)" if more > 0 else "")


@dataclass
class TrustedEnvironments:
    """The worker's copies of the environments it runs, read from `folder`."""

    folder: Path
    variables: Mapping[str, str]
    declarations: dict[str, Environment] = field(default_factory=dict)
    unloadable: dict[str, str] = field(default_factory=dict)
    """Environment name -> why its trusted copy does not load (one line)."""

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] = os.environ
    ) -> TrustedEnvironments | None:
        """The folder `TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS` names, loaded; None when it
        is unset or empty. Raises TrustedFolderUnreadable."""
        folder = environ.get(TRUSTED_ENVIRONMENTS_VARIABLE, "").strip()
        return cls.load(Path(folder), environ) if folder else None

    @classmethod
    def load(cls, folder: Path, variables: Mapping[str, str]) -> TrustedEnvironments:
        where = f"{TRUSTED_ENVIRONMENTS_VARIABLE}={folder}"
        try:
            if not folder.is_dir():
                why = "is not a folder" if folder.exists() else "does not exist"
                raise TrustedFolderUnreadable(
                    f"{where}: {why}; mount the trusted environments there"
                )
            os.listdir(folder)
        except PermissionError:
            raise TrustedFolderUnreadable(
                f"{where}: cannot be read: permission denied (check its owner and mode)"
            ) from None
        except OSError as exc:
            raise TrustedFolderUnreadable(
                f"{where}: cannot be read: {exc.strerror or exc}"
            ) from None
        names = available_environments(folder)
        if not names:
            raise TrustedFolderUnreadable(
                f"{where}: holds no environment files (<name>.yaml beside {BASE_FILE})"
            )
        trusted = cls(folder=folder.absolute(), variables=dict(variables))
        for name in names:
            trusted._read(name)
        return trusted

    def _read(self, name: str) -> Environment | None:
        try:
            env = load_environment(name, self.folder, self.variables)
        except InvalidEnvironment as exc:
            self.declarations.pop(name, None)
            self.unloadable[name] = _one_line(exc)
            return None
        self.unloadable.pop(name, None)
        self.declarations[name] = env
        return env

    def describe(self) -> str:
        """What the worker trusts, for its start log: names and digests, never values."""
        loaded = ", ".join(
            f"{name} ({declaration_digest(env)[:19]})"
            for name, env in sorted(self.declarations.items())
        )
        text = f"trusted environments from {self.folder}: {loaded or 'none loaded'}"
        if self.unloadable:
            text += "; not loadable, so every run of them is refused: " + "; ".join(
                f"{name}: {why}" for name, why in sorted(self.unloadable.items())
            )
        return text

    def refusal(self, declared: Environment, *, reread: bool = True) -> str | None:
        """None when `declared` is the worker's trusted copy, else why it is refused."""
        name = declared.name
        trusted = self.declarations.get(name)
        if trusted is not None and declaration_digest(trusted) == declaration_digest(declared):
            return None
        if reread:  # the folder may have changed since it was read (a ConfigMap update)
            before = declaration_digest(trusted) if trusted is not None else None
            fresh = self._read(name) if (self.folder / f"{name}.yaml").exists() else None
            if fresh is not None and declaration_digest(fresh) != before:
                log.info("trusted environment %s re-read from %s", name, self.folder)
            return self.refusal(declared, reread=False)
        if name in self.unloadable:
            return (
                f"environment {name!r}: the worker's trusted copy in {self.folder} does not "
                f"load ({self.unloadable[name]})"
            )
        if trusted is None:
            known = ", ".join(sorted(self.declarations)) or "none"
            return (
                f"environment {name!r} is not among the worker's trusted environments in "
                f"{self.folder} (trusted: {known})"
            )
        changed = declaration_changes(trusted, declared)
        return (
            f"the declaration of {name!r} differs from the worker's trusted copy in "
            f"{self.folder} at {', '.join(changed)}"
        )

    def check(self, declared: Environment) -> None:
        """Raise the non-retryable UntrustedDeclaration error unless `declared` is trusted."""
        why = self.refusal(declared)
        if why is not None:
            raise activity_error(
                f"{why}. Refused before anything was read or written; this is not retryable: "
                f"start the run from the trusted environment file (or update the worker's "
                f"trusted copy in {TRUSTED_ENVIRONMENTS_VARIABLE})",
                ErrorType.UNTRUSTED_DECLARATION,
            )


def declarations_in(args: Sequence[Any]) -> list[Environment]:
    """The declarations an activity's arguments carry (each input's `environment`)."""
    return [
        env for arg in args if isinstance(env := getattr(arg, "environment", None), Environment)
    ]


class TrustedDeclarationsInterceptor(Interceptor):
    """Installs the check in front of every activity the worker runs (module docstring)."""

    def __init__(self, trusted: TrustedEnvironments) -> None:
        self.trusted = trusted

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CheckDeclaration(next, self.trusted)


class _CheckDeclaration(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, trusted: TrustedEnvironments) -> None:
        super().__init__(next)
        self._trusted = trusted

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        for env in declarations_in(input.args):
            # A re-read reads files: off the event loop the workflows and heartbeats share.
            await asyncio.to_thread(self._trusted.check, env)
        return await super().execute_activity(input)
