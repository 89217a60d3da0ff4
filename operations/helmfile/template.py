"""The Go-template subset helmfile projects use, rendered without guessing.

Understood, exactly as helmfile renders them:

- `{{ .Environment.Name }}`: the environment being imported;
- `{{ .Values.a.b }}`: a scalar from the environment's values (`environments.<env>.values`);
- `{{ requiredEnv "X" }}`: becomes the reference `${X}`, which the environment loader
  interpolates from the process environment, so no value read here is ever written down;
- `{{/* comments */}}`, and whitespace trimming with `{{-` / `-}}`.

Everything else (pipelines such as `| quote`, functions such as `env`, `readFile`, `exec`,
`toYaml`, control structures such as `if` / `range` / `with`) is reported "not understood"
with its file and line and never evaluated:

- an expression is replaced by a placeholder token, so the reader can tell which key it landed
  on and leave that key out of the import (its trim markers are ignored, so the placeholder
  keeps the line's YAML structure instead of joining lines);
- a control structure is removed together with everything up to its matching `{{ end }}`: the
  text it controls is conditional, so none of it is imported, and the report names the lines.

`.Values` references in helmfile.yaml are resolved in a second pass, after the environment's
values are known (as helmfile does); in the first pass (`values=None`) they are placeholders
and not reported. Failure modes: a `}}` inside a string literal of an action ends the action
early (the rest then reads as text); a `.Values` path to a map or list is not understood
(Go would print `map[...]`, which is never what a values file means).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_COMMENT = re.compile(r"^/\*.*\*/$", re.DOTALL)
_ENVIRONMENT_NAME = re.compile(r"^\.Environment\.Name$")
_VALUES = re.compile(r"^\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)$")
_REQUIRED_ENV = re.compile(r'^requiredEnv\s+"([A-Za-z_][A-Za-z0-9_]*)"$')
_BLOCK_OPEN = re.compile(r"^(if|range|with|define|block)\b")
_BLOCK_END = re.compile(r"^end$")
TOKEN_PREFIX = "__template_not_understood_"
TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"(\d+)__")


@dataclass(frozen=True)
class TemplateProblem:
    """A template action the import does not understand (or cannot resolve)."""

    file: str
    line: int
    expression: str
    """The action as written, e.g. `{{ .Values.host | quote }}`."""
    message: str
    token: str | None = None
    """The placeholder left in the text; None for a removed control structure."""
    last_line: int | None = None
    """Where a removed control structure ends."""


@dataclass(frozen=True)
class Rendered:
    text: str
    problems: tuple[TemplateProblem, ...]
    required_env: tuple[str, ...]
    """Variables named by `requiredEnv`, in order of first use."""


@dataclass(frozen=True)
class _Action:
    start: int
    end: int
    body: str
    trim_left: bool
    trim_right: bool


def _actions(text: str) -> list[_Action]:
    found = []
    for match in _ACTION.finditer(text):
        raw = match.group(1)
        trim_left = raw.startswith("- ") or raw.startswith("-\n") or raw == "-"
        trim_right = raw.endswith(" -") or raw.endswith("\n-")
        body = raw[1:] if trim_left else raw
        body = body[:-1] if trim_right else body
        found.append(_Action(match.start(), match.end(), body.strip(), trim_left, trim_right))
    return found


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _scalar_text(value: Any) -> str | None:
    """How Go's template prints a scalar; None for maps, lists and nil."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _lookup(values: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = values
    for part in dotted.strip(".").split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


class _Renderer:
    def __init__(self, text: str, file: str, environment: str, values: Mapping[str, Any] | None):
        self.text, self.file = text, file
        self.environment, self.values = environment, values
        self.out: list[str] = []
        self.problems: list[TemplateProblem] = []
        self.required: list[str] = []
        self.tokens = 0

    def _token(self, action: _Action, message: str, report: bool = True) -> None:
        token = f"{TOKEN_PREFIX}{self.tokens}__"
        self.tokens += 1
        self.out.append(token)
        if report:
            self.problems.append(
                TemplateProblem(
                    self.file,
                    _line(self.text, action.start),
                    self.text[action.start : action.end],
                    message,
                    token=token,
                )
            )

    def _evaluate(self, action: _Action) -> str | None:
        """The action's output, or None when it is not understood (a token is left)."""
        body = action.body
        if _COMMENT.match(body):
            return ""
        if _ENVIRONMENT_NAME.match(body):
            return self.environment
        if match := _REQUIRED_ENV.match(body):
            name = match.group(1)
            if name not in self.required:
                self.required.append(name)
            return f"${{{name}}}"
        if match := _VALUES.match(body):
            if self.values is None:  # first pass over helmfile.yaml: values not known yet
                self._token(action, "", report=False)
                return None
            found, value = _lookup(self.values, match.group(1))
            text = _scalar_text(value) if found else None
            if text is None:
                why = (
                    f"is a {type(value).__name__}, not a scalar"
                    if found and value is not None
                    else f"is not set in the values of environment {self.environment}"
                )
                self._token(action, f"{body} {why}")
            return text
        self._token(
            action,
            "not understood: the import reads {{ .Environment.Name }}, {{ .Values.x }} and "
            '{{ requiredEnv "X" }} only',
        )
        return None

    def render(self) -> Rendered:
        actions = _actions(self.text)
        position, index, strip_next = 0, 0, False
        while index < len(actions):
            action = actions[index]
            before = self.text[position : action.start]
            if strip_next:
                before = before.lstrip()
            understood = _BLOCK_OPEN.match(action.body) is None and not _BLOCK_END.match(
                action.body
            )
            if understood:
                if action.trim_left:
                    before = before.rstrip()
                self.out.append(before)
                value = self._evaluate(action)
                if value is not None:
                    self.out.append(value)
                strip_next = action.trim_right and value is not None
                position, index = action.end, index + 1
                continue
            # A control structure: drop it and everything it controls.
            self.out.append(before)
            closing = self._matching_end(actions, index)
            end = actions[closing].end if closing is not None else len(self.text)
            self.problems.append(
                TemplateProblem(
                    self.file,
                    _line(self.text, action.start),
                    self.text[action.start : action.end],
                    "not understood: a control structure; nothing it controls was imported"
                    + ("" if closing is not None else " (it has no {{ end }})"),
                    last_line=_line(self.text, end),
                )
            )
            strip_next = False
            position = end
            index = closing + 1 if closing is not None else len(actions)
        rest = self.text[position:]
        self.out.append(rest.lstrip() if strip_next else rest)
        return Rendered("".join(self.out), tuple(self.problems), tuple(self.required))

    @staticmethod
    def _matching_end(actions: list[_Action], opener: int) -> int | None:
        depth = 0
        for index in range(opener, len(actions)):
            body = actions[index].body
            if _BLOCK_OPEN.match(body):
                depth += 1
            elif _BLOCK_END.match(body):
                depth -= 1
                if depth == 0:
                    return index
        return None


def render(text: str, file: str, environment: str, values: Mapping[str, Any] | None) -> Rendered:
    """Render `text` (from `file`) for `environment` with the environment's `values`
    (None: not known yet, `.Values` references stay placeholders and are not reported)."""
    return _Renderer(text, file, environment, values).render()


def tokens_in(value: Any) -> list[str]:
    """The placeholder tokens in a parsed value (strings inside maps and lists included)."""
    if isinstance(value, str):
        return [m.group(0) for m in TOKEN.finditer(value)]
    if isinstance(value, Mapping):
        return [t for k, v in value.items() for t in tokens_in(k) + tokens_in(v)]
    if isinstance(value, list):
        return [t for item in value for t in tokens_in(item)]
    return []
