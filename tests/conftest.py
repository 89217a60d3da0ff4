"""Fixtures shared by the whole suite. Services the tests need are started here, by pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HELM_TOOLS = PROJECT_ROOT / ".tools" / "helm"


@pytest.fixture(scope="session")
def helm_binaries() -> dict[str, str]:
    """The real helm v3 and v4 binaries that scripts/setup.sh extracts."""
    found = {v: HELM_TOOLS / v / "helm" for v in ("v3", "v4")}
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        pytest.fail(f"helm binaries missing ({', '.join(missing)}): run scripts/setup.sh")
    return {v: str(p) for v, p in found.items()}
