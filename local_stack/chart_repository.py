"""A Helm chart repository on 127.0.0.1 that serves every chart in `../shared/charts`.

Staging and production pull the Temporal chart from `https://go.temporal.io/helm-charts`,
and an upgrade pulls each hop's chart from the environment's repository. No internet here,
so the local stack serves the same charts the way a chart repository does: each chart
directory is packaged (`helm package`) into a folder, `helm repo index` writes its
`index.yaml`, and plain HTTP serves the folder. The real helm then resolves
`--repo URL --version V` against it exactly as against the real repository.

The charts before 1.0 declare optional subcharts that are not shipped; helm refuses to
package such a chart, so each is packaged from a temporary copy whose `Chart.yaml` has no
`dependencies` (and no `Chart.lock`). The shared folder itself is never changed.

    python -m local_stack.chart_repository --port 0 --directory DIR   # serve until SIGTERM

prints one JSON line ({"url", "directory", "charts"}) once it serves.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml

from local_stack.processes import LOOPBACK, wait_for_stop_signal

SHARED_CHARTS = Path(__file__).resolve().parents[2] / "shared" / "charts"


def package_charts(directory: Path, helm: str, source: Path = SHARED_CHARTS) -> list[str]:
    """Package every chart folder of `source` into `directory` and index it; returns the
    `<name>-<version>` of each chart packaged."""
    directory.mkdir(parents=True, exist_ok=True)
    packaged = []
    with tempfile.TemporaryDirectory(prefix="charts-") as tmp:
        for chart in sorted(p for p in source.iterdir() if (p / "Chart.yaml").is_file()):
            copy = Path(tmp) / chart.name
            shutil.copytree(chart, copy)
            meta = yaml.safe_load((copy / "Chart.yaml").read_text())
            meta.pop("dependencies", None)
            (copy / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
            (copy / "Chart.lock").unlink(missing_ok=True)
            _helm(helm, "package", str(copy), "--destination", str(directory))
            packaged.append(f"{meta['name']}-{meta['version']}")
    _helm(helm, "repo", "index", str(directory))
    return packaged


def _helm(helm: str, *args: str) -> None:
    proc = subprocess.run([helm, *args], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args)} failed: {proc.stderr.strip()}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


class ChartRepository:
    """The packaged charts of `directory`, served over HTTP from a daemon thread."""

    def __init__(self, directory: Path, port: int = 0):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.directory = directory
        self._server = http.server.ThreadingHTTPServer((LOOPBACK, port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="chart-repository", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    @classmethod
    def start(cls, directory: Path, helm: str, port: int = 0) -> ChartRepository:
        """Package the shared charts into `directory` and serve them."""
        package_charts(directory, helm)
        repository = cls(directory, port)
        repository._thread.start()
        return repository

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ChartRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    from adapters.helm_cli import find_helm

    parser = argparse.ArgumentParser(prog="python -m local_stack.chart_repository")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--directory", type=Path, required=True, help="where the packages go")
    args = parser.parse_args(argv)
    repository = ChartRepository.start(args.directory, find_helm())
    charts = sorted(p.name for p in args.directory.glob("*.tgz"))
    line = {"url": repository.url, "directory": str(args.directory), "charts": charts}
    print(json.dumps(line), flush=True)
    wait_for_stop_signal()
    repository.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
