"""What every benchmark shares: rounds, statistics, the table it prints and the JSON it writes.

Benchmarks measure; they never assert. Each script prints a table (median, min, max over its
rounds) and writes `bench/results/<name>.json` with every sample, the core count, the load
average before and after (a figure taken while other work ran on the machine says so) and the
exact command line. `--rounds` trades precision for time (`make bench ROUNDS=1`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def positive_int(text: str) -> int:
    """argparse type: a count of 1 or more (0 rounds would leave every table empty)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of 1 or more")
    return value


def positive_ints(text: str) -> list[int]:
    """argparse type: comma-separated counts, e.g. 1,20,200."""
    return [positive_int(part) for part in text.split(",")]


def choices(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    """argparse type: comma-separated names, each one of `allowed`."""

    def parse(text: str) -> list[str]:
        names = text.split(",")
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}; allowed: {', '.join(allowed)}"
            )
        return names

    return parse


def arguments(description: str, rounds: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=os.environ.get("BENCH_ROUNDS", str(rounds)),
        help=f"rounds per figure (default {rounds}; BENCH_ROUNDS overrides)",
    )
    parser.add_argument("--label", default="", help="stored with the results (e.g. before/after)")
    parser.add_argument(
        "--code",
        type=Path,
        default=ROOT,
        help="run worker.py / starter.py from this checkout (e.g. `git archive` of the "
        "commit before) with this venv; default: this one",
    )
    return parser


def stats(samples: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


def load() -> float:
    return os.getloadavg()[0]


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = [f"## {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(" --- " for _ in header) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(s: dict[str, float]) -> str:
    return f"{s['median']:.3f} ({s['min']:.3f}–{s['max']:.3f})"


class Recorder:
    """Collects samples and writes them with the machine's state."""

    def __init__(self, name: str, args: argparse.Namespace):
        self.name, self.args = name, args
        self.started = time.time()
        self.load_before = load()
        self.samples: dict[str, list[float]] = {}
        self.extra: dict[str, Any] = {}

    def add(self, key: str, seconds: float) -> None:
        self.samples.setdefault(key, []).append(seconds)

    def stats(self, key: str) -> dict[str, float]:
        return stats(self.samples[key])

    def write(self, text: str) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        suffix = f"-{self.args.label}" if self.args.label else ""
        path = RESULTS / f"{self.name}{suffix}.json"
        record = {
            "benchmark": self.name,
            "label": self.args.label,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "cores": os.cpu_count(),
            "rounds": self.args.rounds,
            "load_before": self.load_before,
            "load_after": load(),
            "wall_seconds": time.time() - self.started,
            "samples": self.samples,
            "stats": {k: stats(v) for k, v in self.samples.items()},
            **self.extra,
        }
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(text)
        print(
            f"\n{os.cpu_count()} cores; load average {self.load_before:.2f} before, "
            f"{load():.2f} after; {time.time() - self.started:.0f}s; written {path}"
        )
        return path
