"""API errors rendered as Kubernetes Status objects, which every client parses for `reason`."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def not_found(qualified: str, name: str) -> ApiError:
    group = qualified.partition(".")[2]
    details = {"name": name, "group": group, "kind": qualified.partition(".")[0]}
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found', details)


def already_exists(qualified: str, name: str) -> ApiError:
    details = {
        "name": name,
        "group": qualified.partition(".")[2],
        "kind": qualified.partition(".")[0],
    }
    return ApiError(409, "AlreadyExists", f'{qualified} "{name}" already exists', details)


def conflict(qualified: str, name: str, why: str) -> ApiError:
    details = {
        "name": name,
        "group": qualified.partition(".")[2],
        "kind": qualified.partition(".")[0],
    }
    msg = f'Operation cannot be fulfilled on {qualified} "{name}": {why}'
    return ApiError(409, "Conflict", msg, details)


def invalid(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)
