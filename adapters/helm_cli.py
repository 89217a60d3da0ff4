"""The helm binary: finding it, telling v3 from v4, preparing a local chart, rendering,
supervising a long-running command, and reading helm's error message from its output.

Short commands (`version`, `history`, `get values`, `template`) run to completion through
`HelmCli.run`, which raises `HelmCommandFailed` with helm's stderr. A long one (upgrade,
rollback, uninstall, which wait for readiness) is started with `HelmCli.start`: a
`HelmProcess` whose reader threads collect stderr (bounded) and the latest output line, so
the caller can heartbeat with helm's progress and stop it. Stopping is SIGTERM, which lets
helm mark the release failed (and roll back) instead of leaving it pending-*, then SIGKILL
after `TERMINATE_GRACE_S`. helm runs in a session of its own, so a Ctrl-C meant for the
worker's terminal reaches helm only through that path.

A helm that outlives the worker that started it (the worker was SIGKILLed; helm runs in a
session of its own, so it lives on) would still be working on the release when the next
attempt recovers it. Every long helm therefore carries `TEMPORAL_BOOTSTRAP_HELM_RELEASE=
<API server URL> <context>/<namespace>/<release>`, the activity and the worker's PID in its environment,
and `helms_holding` finds the helm processes working on a release in /proc: ours by that
marker (which names the cluster by its API server URL, so two stacks on one host never take
each other's helm for theirs; with the activity that started it and whether its worker still
lives), anyone else's (an operator's `helm upgrade` by hand) by its command line. Only processes on this
host (this PID namespace) are visible: a worker that died with its pod took its helm with it. Values are
handed to helm on stdin (`--values -`), so a killed worker leaves no values file behind.

helm has no error codes: it prints `Error: ...` (several lines for some failures) and
exits 1; v3 with `--debug` follows it with a Go stack trace, v4 with a hint line.
`error_message` cuts that block out; errors/helm.py classifies it.

Only activities (and the starter's offline `render`/`validate`) call helm; nothing here is
imported by workflow code.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adapters.charts import directory_digest, fetch_chart
from adapters.processes import pid_alive, process_start_time
from declared_state.chart_files import ChartUnreadable, read_chart_metadata
from declared_state.chart_values import build_chart_values
from declared_state.models import ChartSpec, Environment
from declared_state.paths import state_dir

# A checkout's own helm (scripts/setup.sh puts v3 and v4 there); installed elsewhere, HELM_BIN
# or PATH find it.
PROJECT_TOOLS = Path(__file__).resolve().parent.parent / ".tools" / "helm"


def prepared_charts_dir() -> Path:
    """Where prepared copies of local charts live: `charts/` in the one state folder."""
    return state_dir() / "charts"


TERMINATE_GRACE_S = 10.0
HOLDER_VARIABLE = "TEMPORAL_BOOTSTRAP_HELM_RELEASE"
"""Set on every long helm the activities start (see the module docstring)."""
_SEPARATOR = "\x1f"  # ASCII unit separator: names and ids never contain it
_RELEASE_COMMANDS = {"install", "upgrade", "rollback", "uninstall", "delete", "del", "un"}
# v3 `--debug` prints a Go stack after the error; v4 ends with a hint line.
_END_OF_ERROR = re.compile(r"^\S+\.go:\d+: |^Use --debug flag")


class HelmNotFound(RuntimeError):
    pass


class HelmCommandFailed(RuntimeError):
    """helm exited non-zero; `stderr` is helm's own message."""

    def __init__(self, args: list[str], returncode: int, stderr: str):
        self.args_ = args
        self.returncode = returncode
        # A binary that is not helm (HELM_BIN=/bin/false) fails without a word: say so.
        self.stderr = stderr.strip() or (
            f"helm exited {returncode} without a message: is HELM_BIN "
            f"({os.environ.get('HELM_BIN') or 'unset'}) a helm binary?"
        )
        super().__init__(f"helm {args[0] if args else ''} failed ({returncode}): {self.stderr}")


def find_helm(explicit: str | None = None) -> str:
    """$HELM_BIN, then the project's .tools/helm/v4, then .tools/helm/v3, then PATH."""
    for name, value in (("helm", explicit), ("HELM_BIN", os.environ.get("HELM_BIN"))):
        # An explicit choice that cannot be used is an error, never a silent fallback to
        # another helm (#20.10).
        if value and not (Path(value).is_file() and os.access(value, os.X_OK)):
            raise HelmNotFound(
                f"{name}: {value} is not an executable file; point it at a helm binary, or "
                "unset it to use the project's or PATH's helm"
            )
    candidates = [explicit, os.environ.get("HELM_BIN")]
    candidates += [str(PROJECT_TOOLS / v / "helm") for v in ("v4", "v3")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    raise HelmNotFound("helm was not found: run scripts/setup.sh, or set HELM_BIN to a helm binary")


@dataclass(frozen=True)
class ChartRef:
    """What to pass to helm as CHART, plus the flags that go with it."""

    chart: str
    flags: tuple[str, ...]


def _strip_missing_dependencies(source: Path) -> Path:
    """A copy of `source` whose Chart.yaml drops dependencies that are not vendored.

    The offline chart declares optional subcharts (cassandra, prometheus, ...) that are
    absent; helm refuses to render such a chart even when every one of them is disabled.
    """
    meta = yaml.safe_load((source / "Chart.yaml").read_text())
    deps = meta.get("dependencies") or []
    vendored = (
        {p.name for p in (source / "charts").iterdir()} if (source / "charts").is_dir() else set()
    )
    missing = [d for d in deps if not any(v.startswith(d["name"]) for v in vendored)]
    if not missing:
        return source
    digest = directory_digest(source)[:12]
    prepared = prepared_charts_dir()
    target = prepared / f"{meta['name']}-{meta['version']}-{digest}"
    if (target / "Chart.yaml").is_file():
        return target
    prepared.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=prepared) as tmp:
        staging = Path(tmp) / "chart"
        shutil.copytree(source, staging)
        (staging / "Chart.lock").unlink(missing_ok=True)
        meta["dependencies"] = [d for d in deps if d not in missing]
        if not meta["dependencies"]:
            del meta["dependencies"]
        (staging / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        try:
            staging.rename(target)
        except OSError:
            if not (target / "Chart.yaml").is_file():  # lost a race to another process: fine
                raise
    return target


def chart_reference(spec: ChartSpec) -> ChartRef:
    """Resolve the chart to install: a local directory/archive (its path made absolute by the
    loader), or the chart cache's copy of name + version from its repository or the machine's
    mirror (adapters/charts.py; raises ChartUnavailable)."""
    path = Path(spec.local_path) if spec.local_path else fetch_chart(spec).path
    if path.is_dir():
        return ChartRef(str(_strip_missing_dependencies(path)), ())
    return ChartRef(str(path), ())


_MAJOR_BY_BINARY: dict[tuple[str, int], int] = {}


def _binary_identity(binary: str) -> tuple[str, int]:
    path = os.path.realpath(binary)
    try:
        return path, os.stat(path).st_mtime_ns
    except OSError:
        return path, 0


class HelmCli:
    """A helm binary bound to one kubeconfig / context."""

    def __init__(
        self,
        binary: str | None = None,
        kubeconfig: str | None = None,
        kube_context: str | None = None,
    ):
        self.binary = find_helm(binary)
        self.kubeconfig = kubeconfig
        self.kube_context = kube_context
        self._major: int | None = None

    @property
    def major_version(self) -> int:
        """3 or 4; they spell rollback-on-failure and wait differently. Asked once per binary
        and process (`helm version` costs a process start, ~40 ms, a quarter of a no-change
        install step); a binary replaced in place (another mtime) is asked again."""
        if self._major is None:
            key = _binary_identity(self.binary)
            if key not in _MAJOR_BY_BINARY:
                out = self.run(["version", "--short"]).strip()
                _MAJOR_BY_BINARY[key] = int(out.lstrip("v").split(".")[0])
            self._major = _MAJOR_BY_BINARY[key]
        return self._major

    def global_flags(self) -> list[str]:
        flags = []
        if self.kubeconfig:
            flags += ["--kubeconfig", self.kubeconfig]
        if self.kube_context:
            flags += ["--kube-context", self.kube_context]
        return flags

    def with_context(self, kube_context: str | None) -> HelmCli:
        """The same binary and kubeconfig bound to another context (version probe shared)."""
        other = HelmCli(self.binary, self.kubeconfig, kube_context)
        other._major = self._major
        return other

    def command(self, args: list[str]) -> list[str]:
        """argv for a helm command that talks to the cluster (kubeconfig/context appended)."""
        return [self.binary, *args, *self.global_flags()]

    def release_marker(self, namespace: str, release: str) -> str:
        """Names the release on its cluster: two stacks on one host (two kubeconfigs, each
        with a context called `local`) hold different releases of the same name."""
        cluster = cluster_of(self.kubeconfig, self.kube_context)
        return f"{cluster} {self.kube_context or ''}/{namespace}/{release}"

    def start(
        self,
        args: list[str],
        *,
        holds: tuple[str, str],
        owner: str,
        stdin_text: str | None = None,
    ) -> HelmProcess:
        """A long helm command on release `holds` = (namespace, release), started for
        `owner` (the activity), running under supervision and marked as ours (see
        `helms_holding`); `stdin_text` is fed to it."""
        me = f"{os.getpid()}:{process_start_time(os.getpid())}"
        marker = _SEPARATOR.join((self.release_marker(*holds), owner, me))
        env = {**os.environ, HOLDER_VARIABLE: marker}
        return HelmProcess(self.command(args), env=env, stdin_text=stdin_text)

    def holders(self, namespace: str, release: str) -> list[HelmHolder]:
        """The helm processes on this host working on `release` now (see the module doc)."""
        return helms_holding(
            self.release_marker(namespace, release),
            namespace,
            release,
            cluster_of(self.kubeconfig, self.kube_context),
        )

    def run_kube(self, args: list[str], timeout: float | None = 120) -> str:
        """`run` with this CLI's kubeconfig and context."""
        return self.run([*args, *self.global_flags()], timeout=timeout)

    def run_json(self, args: list[str], timeout: float | None = 120) -> Any:
        """`run_kube` of a command given `-o json`; helm prints `null` for nothing."""
        return json.loads(self.run_kube([*args, "-o", "json"], timeout=timeout) or "null")

    def wait_flags(self) -> list[str]:
        """Wait for readiness and roll back on failure, in this helm major's spelling.

        v3: `--atomic` (implies `--wait`); v4: `--rollback-on-failure` with the kstatus
        `watcher` wait strategy (v4's plain default is `hookOnly`, which does not wait).
        """
        if self.major_version >= 4:
            return ["--rollback-on-failure", "--wait=watcher"]
        return ["--atomic", "--wait"]

    def apply_flags(self) -> list[str]:
        """How an upgrade writes objects. v4 applies server-side, where a field someone else
        changed (`kubectl scale`, `kubectl edit`) belongs to them and a plain apply fails
        with a conflict: `--force-conflicts` makes the declared state win. v3 patches with a
        three-way merge, which has no conflicts."""
        return ["--force-conflicts"] if self.major_version >= 4 else []

    def run(
        self, args: list[str], timeout: float | None = 120, stdin_text: str | None = None
    ) -> str:
        proc = subprocess.run(
            [self.binary, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **({"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}),
        )
        if proc.returncode != 0:
            raise HelmCommandFailed(args, proc.returncode, proc.stderr)
        return proc.stdout

    def template(
        self,
        release: str,
        namespace: str,
        chart: ChartRef,
        values: dict[str, Any] | Sequence[dict[str, Any]],
    ) -> str:
        """`helm template` with `values` (or several values layers, passed in order as helm's
        `--values`, which helm merges as helmfile has it do); returns the rendered YAML
        documents. One layer goes on stdin; several are written to a temporary folder that
        is removed when helm is done."""
        if isinstance(values, dict):
            return self.run(
                [
                    "template",
                    release,
                    chart.chart,
                    *chart.flags,
                    "--namespace",
                    namespace,
                    "--values",
                    "-",
                ],
                stdin_text=yaml.safe_dump(values),
            )
        with tempfile.TemporaryDirectory(prefix="values-") as folder:
            flags: list[str] = []
            for index, layer in enumerate(values):
                path = Path(folder) / f"{index}.yaml"
                path.write_text(yaml.safe_dump(layer))
                flags += ["--values", str(path)]
            return self.run(
                ["template", release, chart.chart, *chart.flags, "--namespace", namespace, *flags]
            )

    def show_values(self, chart: ChartRef) -> dict[str, Any]:
        """The chart's own default values (`helm show values`, its values.yaml)."""
        data = yaml.safe_load(self.run(["show", "values", chart.chart, *chart.flags]))
        return data if isinstance(data, dict) else {}


class HelmProcess:
    """A running helm command whose output lines are collected by reader threads."""

    def __init__(
        self, argv: list[str], env: dict[str, str] | None = None, stdin_text: str | None = None
    ):
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env,
            start_new_session=True,  # our signals only, never the worker's terminal's
        )
        self.start_time = process_start_time(self.proc.pid)
        self.stderr: deque[str] = deque(maxlen=400)
        self.last_line = ""
        self._readers = [
            threading.Thread(target=self._read, args=(stream, keep), daemon=True)
            for stream, keep in ((self.proc.stdout, False), (self.proc.stderr, True))
        ]
        for reader in self._readers:
            reader.start()
        if stdin_text is not None:
            assert self.proc.stdin is not None
            try:  # helm reads its values before anything else; then the pipe is closed
                self.proc.stdin.write(stdin_text)
                self.proc.stdin.close()
            except BrokenPipeError:
                pass  # helm ended before reading; its exit code and stderr say why

    def _read(self, stream: Any, keep: bool) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            if keep:
                self.stderr.append(line)
            if line.strip():
                self.last_line = line.strip()[:300]

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def finish(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)

    def terminate(self) -> None:
        """SIGTERM (helm marks the release failed and may roll back), then SIGKILL."""
        if self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=TERMINATE_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass


@dataclass(frozen=True)
class HelmHolder:
    """A helm process working on a release."""

    pid: int
    start_time: str | None
    command: str
    """Its command line, for people (helm's own arguments; values come on stdin)."""
    owner: str | None
    """The activity that started it (`<workflow id>/<run id>/<activity id>`); None when
    temporal-bootstrap did not start it."""
    orphaned: bool = False
    """The worker that started it is gone: nobody will ever read its outcome."""


def _helm_argv(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    return argv if argv and Path(argv[0]).name == "helm" else None


def _marker(pid: str) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # someone else's process: its environment is not ours to read
        return None
    prefix = f"{HOLDER_VARIABLE}=".encode()
    found = next((e for e in environ.split(b"\0") if e.startswith(prefix)), None)
    return found[len(prefix) :].decode(errors="replace") if found else None


def cluster_of(kubeconfig: str | None, kube_context: str | None) -> str:
    """The API server URL that `kubeconfig` (else $KUBECONFIG, else ~/.kube/config) and
    `kube_context` (else its current context) point at: what tells two clusters apart on one
    host. A kubeconfig that cannot be read is named by its path instead."""
    if kubeconfig:
        paths = [kubeconfig]
    elif os.environ.get("KUBECONFIG"):
        paths = [p for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
    else:
        paths = [str(Path.home() / ".kube" / "config")]
    server = _server_of(paths, kube_context)
    return server or "kubeconfig:" + os.pathsep.join(str(Path(p).resolve()) for p in paths)


def _server_of(paths: list[str], kube_context: str | None) -> str | None:
    docs = []
    for path in paths:
        try:
            doc = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    # kubectl merges a KUBECONFIG list: the first file to set a key wins.
    context = kube_context or next(
        (d["current-context"] for d in docs if d.get("current-context")), None
    )
    try:
        cluster = next(
            c["context"]["cluster"]
            for d in docs
            for c in d.get("contexts") or []
            if c.get("name") == context
        )
        return str(
            next(
                c["cluster"]["server"]
                for d in docs
                for c in d.get("clusters") or []
                if c.get("name") == cluster
            )
        )
    except (StopIteration, KeyError, TypeError):
        return None


def _flag(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _works_on(pid: str, argv: list[str], namespace: str, release: str, cluster: str) -> bool:
    """A helm command line that changes `release` in `namespace` on `cluster` (by hand, say).
    One that names no `--kubeconfig`, or one this process cannot read, may use any cluster:
    it counts."""
    args = argv[1:]
    if not _RELEASE_COMMANDS & set(args) or release not in args:
        return False
    its_kubeconfig = _flag(args, "--kubeconfig")
    if its_kubeconfig:
        with contextlib.suppress(OSError):  # relative to where that helm runs
            its_kubeconfig = str(Path(os.readlink(f"/proc/{pid}/cwd")) / its_kubeconfig)
        server = _server_of([its_kubeconfig], _flag(args, "--kube-context"))
        if server is not None and server != cluster:
            return False
    for i, arg in enumerate(args):
        if arg in ("-n", "--namespace") and i + 1 < len(args):
            return args[i + 1] == namespace
        if arg.startswith("--namespace="):
            return arg.split("=", 1)[1] == namespace
    return namespace == "default"


def helms_holding(
    release_marker: str, namespace: str, release: str, cluster: str
) -> list[HelmHolder]:
    """The helm processes on this host working on `release` in `namespace` on `cluster` (the
    API server URL, see `cluster_of`): those whose `HOLDER_VARIABLE` names `release_marker`
    (ours), and any other helm whose command line changes it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = _helm_argv(entry.name)
        if argv is None:
            continue
        marker = (_marker(entry.name) or "").split(_SEPARATOR)
        ours = len(marker) == 3 and marker[0] == release_marker
        if ours or _works_on(entry.name, argv, namespace, release, cluster):
            start = process_start_time(int(entry.name))
            if start is None or not pid_alive(int(entry.name), start):
                continue  # gone in between, or a zombie nobody reaped
            command = " ".join(["helm", *argv[1:]])[:300]
            if not ours:
                found.append(HelmHolder(int(entry.name), start, command, None))
                continue
            parent_pid, _, parent_start = marker[2].partition(":")
            orphaned = not (parent_pid.isdigit() and pid_alive(int(parent_pid), parent_start))
            found.append(HelmHolder(int(entry.name), start, command, marker[1], orphaned))
    return found


def error_message(lines: list[str]) -> str:
    """helm's own `Error: ...` message (all of its lines), without debug noise."""
    start = next((i for i, line in enumerate(lines) if line.startswith("Error: ")), None)
    if start is None:
        tail = [line for line in lines if line.strip()][-5:]
        return "\n".join(tail).strip() or "helm failed without a message"
    block: list[str] = []
    for line in lines[start:]:
        if block and _END_OF_ERROR.search(line):
            break
        block.append(line)
    return "\n".join(block).strip()[:3000]


def release_chart_and_values(
    env: Environment, digests: Mapping[str, str] | None = None
) -> tuple[ChartRef, dict[str, Any]]:
    """The chart and the values env's release is installed with: what install_chart hands to
    `helm upgrade --install` and what `render_environment` renders, so the drift check
    compares live objects with exactly what an install would apply. Raises OSError /
    ValueError when a local chart is missing or is another version."""
    chart = chart_reference(env.chart)
    check_local_chart_version(env.chart, chart)
    return chart, build_chart_values(env, digests)


def render_environment(
    env: Environment, helm: HelmCli | None = None, digests: Mapping[str, str] | None = None
) -> str:
    """`helm template` of env's chart with the values built from env (what would be installed)."""
    helm = helm or HelmCli()
    chart, values = release_chart_and_values(env, digests)
    return helm.template(env.kubernetes.release, env.kubernetes.namespace, chart, values)


def check_local_chart_version(spec: ChartSpec, chart: ChartRef) -> None:
    """A local chart must be the version the environment declares, or the tables lie."""
    if not spec.local_path:
        return
    path = Path(chart.chart)
    if not path.exists():
        raise FileNotFoundError(f"chart.local_path: {spec.local_path} does not exist ({path})")
    try:
        meta = read_chart_metadata(path)
    except ChartUnreadable as exc:
        raise ValueError(f"chart.local_path: {exc}") from None
    if meta.version != spec.version:
        raise ValueError(
            f"chart.local_path: {spec.local_path} holds chart version {meta.version}, "
            f"but chart.version says {spec.version}"
        )
