"""A namespace's history and visibility archival (#22.1, #22.2): compare, register, update, check.

The server's rules (declared_state/archival.py names the source files): RegisterNamespace
and UpdateNamespace take `history_archival_state/uri` and `visibility_archival_state/uri`;
a namespace's URI never changes once set ("Cannot update existing archival URI"); enabling
without a URI keeps the namespace's own URI, else takes the cluster's namespace default; and
a server whose cluster config does not enable that kind ignores the fields without an error.

So, per declared kind (a kind not declared is not managed: never sent, never reported):
- live URI set and a different URI declared: refused before any write (non-retryable
  ConfigurationMismatch naming both URIs); a dry run reports it not repairable, so
  `remediate` never runs the step for it;
- state differs, or a declared URI is not set yet: drift at
  `/temporal_namespaces/<ns>/archival/<kind>`, and one UpdateNamespace sets state and URI
  (the URI left empty when none is declared: the server keeps or defaults it);
- after a write, what the server keeps is compared with the declaration: a server that
  ignored it (its cluster config does not enable that kind, whatever the environment's
  `archival:` says, e.g. the dev server, or a release deployed with other values) stops the
  attempt with a non-retryable ConfigurationMismatch instead of reporting success.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import ArchivalState as LiveState
from temporalio.api.namespace.v1 import NamespaceConfig

from contracts.base import DriftItem
from contracts.register_namespaces import NamespaceSetting
from declared_state.archival import ARCHIVAL_KINDS, ArchivalState, NamespaceArchivalKind
from declared_state.models import TemporalNamespace

_LIVE = {ArchivalState.ENABLED: LiveState.ARCHIVAL_STATE_ENABLED}


def _state_of(value: int) -> ArchivalState:
    # UNSPECIFIED does not come back from the server; it means disabled like DISABLED.
    return (
        ArchivalState.ENABLED
        if value == LiveState.ARCHIVAL_STATE_ENABLED
        else ArchivalState.DISABLED
    )


def _wire(state: ArchivalState) -> LiveState.ValueType:
    return _LIVE.get(state, LiveState.ARCHIVAL_STATE_DISABLED)


def _live(config: NamespaceConfig, kind: str) -> tuple[ArchivalState, str]:
    state = getattr(config, f"{kind}_archival_state")
    uri = getattr(config, f"{kind}_archival_uri")
    return _state_of(state), uri


def _shown(state: ArchivalState, uri: str | None, *, declared: bool = False) -> str:
    if uri:
        return f"{state.value} {uri}"
    if declared and state == ArchivalState.ENABLED:
        return f"{state.value} (the namespace's URI, else the cluster default)"
    return state.value


def archival_path(namespace: str, kind: str) -> str:
    return f"/temporal_namespaces/{namespace}/archival/{kind}"


def _kept(declared: NamespaceArchivalKind, state: ArchivalState, uri: str) -> bool:
    """Whether the live state and URI are the declaration's (no URI declared: any)."""
    return state == declared.state and (not declared.uri or uri == declared.uri)


def _declared(ns: TemporalNamespace) -> list[tuple[str, NamespaceArchivalKind]]:
    if ns.archival is None:
        return []
    return [(k, d) for k in ARCHIVAL_KINDS if (d := ns.archival.kind(k)) is not None]


@dataclass
class ArchivalPlan:
    """How a namespace's declared archival differs from what the server keeps, and what an
    UpdateNamespace sets. Built from what was read, before any write."""

    drift: list[DriftItem] = field(default_factory=list)
    outcomes: list[NamespaceSetting] = field(default_factory=list)
    update: dict[str, NamespaceArchivalKind] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    """One line per kind whose declared URI differs from the live one (never changeable)."""

    def set_on(self, config: NamespaceConfig) -> None:
        """Write the kinds to update into an UpdateNamespace's config."""
        for kind, declared in self.update.items():
            setattr(config, f"{kind}_archival_state", _wire(declared.state))
            setattr(config, f"{kind}_archival_uri", declared.uri or "")


def plan_archival(ns: TemporalNamespace, live: NamespaceConfig) -> ArchivalPlan:
    plan = ArchivalPlan()
    for kind, declared in _declared(ns):
        setting = f"archival/{kind}"
        path = archival_path(ns.name, kind)
        state, uri = _live(live, kind)
        want = _shown(declared.state, declared.uri, declared=True)
        if declared.uri and uri and declared.uri != uri:
            how = (
                f"declare uri: {uri} again (or leave uri out to keep it); archiving "
                f"{ns.name}'s {kind} to {declared.uri} takes a new namespace"
            )
            plan.drift.append(
                DriftItem(
                    message=f"{path}: archival URI is {uri}, declared {declared.uri} (the server "
                    "never changes a namespace's archival URI; never repaired)",
                    kind="TemporalNamespace",
                    name=ns.name,
                    path=path,
                    live=_shown(state, uri),
                    declared=want,
                    repairable=False,
                    how=how,
                )
            )
            plan.refusals.append(
                f"namespace {ns.name!r}: {kind} archival URI is {uri} on the server but declared "
                f"{declared.uri}; the server never changes a namespace's archival URI once set "
                f"(it answers 'Cannot update existing archival URI') and nothing was changed. "
                f"Fix: {how}"
            )
            plan.outcomes.append(NamespaceSetting(field=setting, action="refused"))
            continue
        if _kept(declared, state, uri):
            plan.outcomes.append(NamespaceSetting(field=setting, action="unchanged"))
            continue
        plan.drift.append(
            DriftItem(
                message=f"{path}: live {_shown(state, uri)}, declared {want}",
                kind="TemporalNamespace",
                name=ns.name,
                path=path,
                live=_shown(state, uri),
                declared=want,
            )
        )
        plan.update[kind] = declared
        never = state == ArchivalState.DISABLED and not uri
        plan.outcomes.append(
            NamespaceSetting(field=setting, action="added" if never else "updated")
        )
    return plan


def registration_fields(ns: TemporalNamespace) -> dict[str, Any]:
    """RegisterNamespaceRequest fields for the declared kinds; a kind not declared is left
    unspecified, so the server gives it the cluster's namespace default state."""
    fields: dict[str, Any] = {}
    for kind, declared in _declared(ns):
        fields[f"{kind}_archival_state"] = _wire(declared.state)
        fields[f"{kind}_archival_uri"] = declared.uri or ""
    return fields


def not_applied(ns: TemporalNamespace, config: NamespaceConfig) -> str | None:
    """Why what the server keeps after a write is not the declared archival, or None."""
    ignored = []
    for kind, declared in _declared(ns):
        state, uri = _live(config, kind)
        if not _kept(declared, state, uri):
            ignored.append(
                f"{kind} (declared {_shown(declared.state, declared.uri, declared=True)}, the "
                f"server keeps {_shown(state, uri)})"
            )
    if not ignored:
        return None
    return (
        f"namespace {ns.name!r}: the server did not apply its archival: {'; '.join(ignored)}. "
        "A server ignores a namespace's archival when its own cluster config does not enable "
        "that kind: check that the deployed server config is the declared one (archival.<kind>."
        "state: enabled renders server.archival), or declare state: disabled"
    )
