"""How a step is declared: one keyword-argument `StepSpec` beside its contract, which the
workflows compose into lists and the worker registers from.

A step is written in two places, both its own: `contracts/<step>.py` (Input, Result, the
typed activity reference and its `SPEC`) and `activities/<step>.py` (the implementation).
A workflow runs a step by putting its spec in its list; the worker registers the
implementations of the activities the workflows' specs name (worker.py), and
tests/unit/test_architecture.py checks that every spec's activity has one.

A spec says:

- `name`: the step's record name in `progress` (and the drift check's finding);
- `activity`: the typed reference (its name and result type come from it);
- `make_input`, `deadline` (all attempts), `start_to_close` (one attempt): each built from
  the run's input (`RunInput`: a BootstrapInput, or an upgrade's HopInput). The deadlines of
  the steps that existed first are also fields of `StepDeadlines`, which a run's input may
  set; a new step needs none and may return a fixed `timedelta`;
- `retry`: how often and how long to try what is worth trying (retryability is not decided
  here: an activity error's type says whether it is permanent, from one table per backend in
  adapters/errors);
- `heartbeat`: the heartbeat timeout, from the run's input (None: the activity does not
  heartbeat). The steps that wait use `step_heartbeat`, the environment's
  `step_timeouts.heartbeat` (30 s unless declared): after a worker dies, its attempt is
  retried elsewhere once this much time has passed without a heartbeat. The value is read
  from the run's input, which the history records, so a replay schedules the same timeout
  (and histories from before the setting read its default, the 30 s they ran with);
- `after`: the steps of the same list it needs done first. None (the default): everything
  before it in the list, so a list is sequential unless a step says otherwise; `()`: nothing,
  it runs at once with the steps before it. Names not in a list are ignored there;
- `read_only`: it only reads (a bootstrap dry run runs it);
- `drift_checked`: the drift check dry-runs it and compares.

`Gate` is an operator's approval in a list: it stands alone (everything before it runs
before it, everything after it after it). `waves()` groups a list into what runs at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Protocol, TypeVar

from temporalio import activity
from temporalio.common import RetryPolicy

from contracts.base import FrozenModel
from declared_state.models import Environment

# Contravariant: a step built from a BootstrapInput runs from a HopInput (a BootstrapInput).
RunInput = TypeVar("RunInput", bound=FrozenModel, contravariant=True)

# Retry policies, one per concern.
PREFLIGHT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
KUBERNETES_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
HELM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=3,  # each attempt may wait the whole helm --timeout
)
FRONTEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=1.5,
    maximum_interval=timedelta(seconds=30),
)
NAMESPACE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
AWS_WAIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
)
# A schema Job that is still running is waited for again; the Job itself is never doubled.
SCHEMA_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)


class _RunWithEnvironment(Protocol):
    @property
    def environment(self) -> Environment: ...


def step_heartbeat(input: _RunWithEnvironment) -> timedelta:
    """The heartbeat timeout of the steps that wait: the environment's
    `step_timeouts.heartbeat`."""
    return input.environment.step_timeouts.heartbeat


@dataclass(frozen=True, kw_only=True)
class StepSpec(Generic[RunInput]):
    """One step, as every workflow runs it; see the module docstring."""

    name: str
    activity: Callable[..., Any]
    make_input: Callable[[RunInput], FrozenModel]
    deadline: Callable[[RunInput], timedelta]
    start_to_close: Callable[[RunInput], timedelta]
    retry: RetryPolicy
    heartbeat: Callable[[RunInput], timedelta] | None = None
    after: tuple[str, ...] | None = None
    read_only: bool = False
    drift_checked: bool = False

    @property
    def activity_name(self) -> str:
        return activity_name(self.activity)


@dataclass(frozen=True, kw_only=True)
class Gate:
    """An operator's approval in a step list (`before`: what it guards, for the message)."""

    name: str
    before: str


def activity_name(reference: Callable[..., Any]) -> str:
    """The registered name of an activity reference or implementation."""
    name = activity._Definition.must_from_callable(reference).name
    assert name is not None  # only dynamic activities have none, and no step is one
    return name


StepItem = StepSpec[Any] | Gate


def waves(items: Sequence[StepItem]) -> tuple[tuple[StepItem, ...], ...]:
    """The list in the groups that run at once, in list order: a step joins the group of
    the steps before it when none of them is one it needs (`after`); a gate stands alone.
    Raises ValueError for a name used twice."""
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        raise ValueError(f"a step list names a step twice: {names}")
    groups: list[list[StepItem]] = []
    for item in items:
        current = groups[-1] if groups else None
        joins = (
            current is not None
            and isinstance(item, StepSpec)
            and item.after is not None
            and not any(isinstance(other, Gate) for other in current)
            and not {other.name for other in current} & set(item.after)
        )
        if joins and current is not None:
            current.append(item)
        else:
            groups.append([item])
    return tuple(tuple(group) for group in groups)
