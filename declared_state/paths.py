"""Where temporal-bootstrap keeps its files: one setting each, honoured everywhere.

- Environment files: `--environments-dir`, else `TEMPORAL_BOOTSTRAP_ENVIRONMENTS`, else
  `environments/` in the working directory.
- State (the embedded bootstrap server's SQLite file, prepared chart copies, the local
  stack): `TEMPORAL_BOOTSTRAP_STATE_DIR`, else `.state/` in the working directory.

Defaults are taken from the working directory, never from where the code is installed, so
an installed package (site-packages) behaves like a checkout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENVIRONMENTS_VARIABLE = "TEMPORAL_BOOTSTRAP_ENVIRONMENTS"
STATE_VARIABLE = "TEMPORAL_BOOTSTRAP_STATE_DIR"


def environments_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get(ENVIRONMENTS_VARIABLE) or "environments").absolute()


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get(STATE_VARIABLE) or ".state").absolute()
