"""The one frozen base model of every model that crosses a boundary (workflow and activity
inputs and results, the declared state). A leaf: it imports nothing of the project, so the
declared state and the step contracts can both build on it without importing each other."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    """Base of every model that crosses a boundary: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")
