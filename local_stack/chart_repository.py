"""A Helm chart repository on 127.0.0.1 that serves the chart cache.

Staging and production pull the Temporal chart from `https://go.temporal.io/helm-charts`
through the chart cache (adapters/charts.py). The local stack serves what that cache holds
the way a chart repository does, so the repository path (helm resolving `--repo URL
--version V`) can be tested and used without internet access: each cached chart is packaged
(`helm package`) into a folder, `helm repo index` writes its `index.yaml`, and plain HTTP
serves the folder.

`fill_chart_cache` decides what is in the cache: every chart of the machine's mirror folder
(`TEMPORAL_BOOTSTRAP_CHART_MIRROR`, the developers' and CI's `../shared/charts`), else the
default chart (`temporal` 0.52.0, what `environments/local.yaml` installs) from the
mirror repository or the real one. Nothing here reads a folder by itself. Without network
and without a mirror it raises ChartUnavailable (one line naming the chart, the repository
and the setting) before `python -m local_stack up` starts anything.

The charts before 1.0 declare optional subcharts that are not shipped in their source
folders; helm refuses to package such a chart, so each is packaged from a temporary copy
whose `Chart.yaml` has no `dependencies` (and no `Chart.lock`). The cache is never changed.

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
from pathlib import Path
from typing import Any

import yaml

from adapters.charts import (
    ChartUnavailable,
    FetchedChart,
    chart_source,
    fetch_chart,
    folder_charts,
    mirror_setting,
    unavailable,
)
from declared_state.models import ChartSpec
from local_stack.http_thread import LoopbackHttpServer
from local_stack.processes import wait_for_stop_signal


def fill_chart_cache(helm: str) -> list[FetchedChart]:
    """The charts the local stack serves, fetched into the chart cache (see the module
    docstring). Raises ChartUnavailable."""
    mirror = mirror_setting()
    default = ChartSpec()
    if mirror is None or "://" in mirror[1]:
        return [fetch_chart(default, helm)]
    folder = Path(mirror[1]).expanduser()
    if not folder.is_dir():
        raise unavailable(default, chart_source(default), "no such folder")
    specs = [
        ChartSpec.model_construct(repository=default.repository, name=name, version=version)
        for name, version in folder_charts(folder)
    ]
    return [fetch_chart(spec, helm) for spec in specs] or [fetch_chart(default, helm)]


def package_charts(directory: Path, helm: str) -> list[str]:
    """Package every chart of the cache (filled first) into `directory` and index it;
    returns the `<name>-<version>` of each chart packaged."""
    directory.mkdir(parents=True, exist_ok=True)
    packaged = []
    with tempfile.TemporaryDirectory(prefix="charts-") as tmp:
        for fetched in fill_chart_cache(helm):
            if not fetched.path.is_dir():
                shutil.copyfile(fetched.path, directory / f"{fetched.name}-{fetched.version}.tgz")
                packaged.append(f"{fetched.name}-{fetched.version}")
                continue
            copy = Path(tmp) / fetched.path.name
            shutil.copytree(fetched.path, copy)
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


class ChartRepository(LoopbackHttpServer):
    """The packaged charts of `directory`, served over HTTP from a daemon thread."""

    def __init__(self, directory: Path, port: int = 0):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.directory = directory
        self._bind(handler, port, "chart-repository")

    @classmethod
    def start(cls, directory: Path, helm: str, port: int = 0) -> ChartRepository:
        """Package the cached charts into `directory` and serve them."""
        package_charts(directory, helm)
        return cls.serve(directory, port)

    @classmethod
    def serve(cls, directory: Path, port: int = 0) -> ChartRepository:
        """Serve `directory` as it is (packaged charts and their index.yaml)."""
        return cls(directory, port)._run()


def main(argv: list[str] | None = None) -> int:
    from adapters.helm_cli import find_helm

    parser = argparse.ArgumentParser(prog="python -m local_stack.chart_repository")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--directory", type=Path, required=True, help="where the packages go")
    args = parser.parse_args(argv)
    try:
        repository = ChartRepository.start(args.directory, find_helm())
    except ChartUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    charts = sorted(p.name for p in args.directory.glob("*.tgz"))
    line = {"url": repository.url, "directory": str(args.directory), "charts": charts}
    print(json.dumps(line), flush=True)
    wait_for_stop_signal()
    repository.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
