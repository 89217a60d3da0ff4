"""temporal-bootstrap operator CLI: `python starter.py --help` (installed as the
`temporal-bootstrap` command). The commands live in cli/ (one module per command group);
this file is the entry point a checkout runs."""

from __future__ import annotations

from cli import cli, main
from cli.app import (
    EXIT_CODES,
    EXIT_DRIFTED,
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_WAITING,
    app,
)

__all__ = [
    "EXIT_CODES",
    "EXIT_DRIFTED",
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_WAITING",
    "app",
    "cli",
    "main",
]

if __name__ == "__main__":
    cli()
