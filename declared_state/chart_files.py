"""Reading a chart's own metadata (`Chart.yaml`) from a chart directory or a packaged `.tgz`.

A chart on disk says which chart version it is and which server it deploys (`appVersion`),
which is better evidence than any table: the loader fills `chart.server_version` from it,
and the helm wrapper refuses a local chart whose version is not the declared one.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ChartUnreadable(ValueError):
    """The path holds no readable chart; the message says what is wrong."""


@dataclass(frozen=True)
class ChartMetadata:
    name: str
    version: str
    app_version: str | None


def read_chart_metadata(path: Path) -> ChartMetadata:
    """`Chart.yaml` of the chart directory or archive at `path`."""
    if path.is_dir():
        try:
            text = (path / "Chart.yaml").read_text()
        except OSError as exc:
            raise ChartUnreadable(f"{path} has no readable Chart.yaml ({exc.strerror})") from None
    elif path.is_file():
        text = _chart_yaml_in_archive(path)
    else:
        raise ChartUnreadable(f"{path} does not exist")
    try:
        meta: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ChartUnreadable(f"the Chart.yaml of {path} is not valid YAML: {exc}") from None
    if not isinstance(meta, dict) or not meta.get("version"):
        raise ChartUnreadable(f"the Chart.yaml of {path} names no chart version")
    app = meta.get("appVersion")
    return ChartMetadata(
        name=str(meta.get("name") or ""),
        version=str(meta["version"]),
        app_version=str(app).lstrip("v") if app else None,
    )


def _chart_yaml_in_archive(path: Path) -> str:
    """`<chart>/Chart.yaml` of a packaged chart (`helm package` output)."""
    try:
        with tarfile.open(path, "r:*") as archive:
            member = next(
                (
                    m
                    for m in archive.getmembers()
                    if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")
                ),
                None,
            )
            handle = archive.extractfile(member) if member is not None else None
            if handle is None:
                raise ChartUnreadable(f"{path} holds no <chart>/Chart.yaml")
            return handle.read().decode()
    except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
        raise ChartUnreadable(f"{path} is not a packaged chart ({exc})") from None
