"""`python -m local_stack up|status|down`: the local stack as background processes."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.charts import ChartUnavailable
from local_stack.mariadb import MariaDBNotInstalled
from local_stack.processes import LOOPBACK, tcp_open
from local_stack.stack import (
    LocalStack,
    default_state_dir,
    load_state,
    processes_alive,
    state_path,
    stop_recorded,
)


def describe(state: Mapping[str, Any]) -> str:
    """Addresses and the export lines a user needs, from a state file."""
    db, aws, t = state["mariadb"], state["aws"], state["temporal"]
    kube = state["kubernetes"]
    lines = [
        f"  Kubernetes API     {kube['url'] or '-'}"
        + (f"  (kubeconfig {kube['kubeconfig']})" if kube["kubeconfig"] else ""),
        f"  MariaDB (TLS)      {db['host']}:{db['port']}  user {db['user']}  "
        f"databases {', '.join(db['databases'])}  CA {db['ca_bundle']}",
        f"  AWS (moto)         {aws['endpoint_url']}  RDS {aws['rds_instance_identifier']}, "
        f"secret {aws['secret_id']}, s3://{aws['ca_bucket']}/{aws['ca_key']}",
        f"  Temporal bootstrap {t['bootstrap']['address']}  Web UI {t['bootstrap']['ui_url']}",
        "  Temporal frontends one dev server per Ready frontend pod of an installed release "
        "(reach it: port-forward)",
        f"  chart repository   {state['chart_repository']['url']}",
        f"  state file         {Path(state['state_dir']) / 'stack.json'}",
        "",
        "# use it from a shell:",
    ]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(state["env"].items())]
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    state = load_state(args.state_dir)
    if state is not None:
        alive = processes_alive(state)
        if alive and all(alive.values()):
            print(f"local stack already up (started in {state['startup_seconds']}s)")
            print(describe(state))
            return 0
        # Partly dead: clear what is left and start afresh.
        stop_recorded(state, timeout=5)
        state_path(args.state_dir).unlink(missing_ok=True)
    stack = LocalStack(args.state_dir, detached=True, with_kubernetes=not args.without_kubernetes)
    try:
        stack.start()
    except MariaDBNotInstalled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ChartUnavailable as exc:  # checked before anything starts
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(f"local stack up in {stack.startup_seconds:.2f}s")
    print(describe(stack.state()))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Foreground, in-process (moto and the Kubernetes stand-in in this process) until
    SIGINT/SIGTERM, then everything is stopped."""
    state = load_state(args.state_dir)
    if state is not None and any(processes_alive(state).values()):
        print(f"error: a local stack is already up in {args.state_dir}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stack = LocalStack(args.state_dir, with_kubernetes=not args.without_kubernetes)
    try:
        stack.start()
    except MariaDBNotInstalled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ChartUnavailable as exc:  # checked before anything starts
        print(f"error: {exc}", file=sys.stderr)
        return 3
    try:
        print(f"local stack up in {stack.startup_seconds:.2f}s (Ctrl-C stops it)")
        print(describe(stack.state()), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        stack.stop()
    print("local stack stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = load_state(args.state_dir)
    if state is None:
        print(f"local stack is not up (no {state_path(args.state_dir)})")
        return 3
    alive = processes_alive(state)
    for name, ok in alive.items():
        pid = state["processes"][name]["pid"]
        print(f"  {name:<18} pid {pid:<8} {'running' if ok else 'NOT RUNNING'}")
    ports = {
        "mariadb": state["mariadb"]["port"],
        "temporal-bootstrap": state["temporal"]["bootstrap"]["port"],
    }
    reachable = {name: tcp_open(LOOPBACK, int(port)) for name, port in ports.items()}
    for name, ok in reachable.items():
        if not ok:
            print(f"  {name}: port {ports[name]} not answering")
    up = all(alive.values()) and all(reachable.values())
    print("local stack is up" if up else "local stack is DEGRADED (run `down` then `up`)")
    if up:
        print(describe(state))
    return 0 if up else 1


def cmd_down(args: argparse.Namespace) -> int:
    state = load_state(args.state_dir)
    if state is None:
        print("local stack is not up")
    else:
        stopped = stop_recorded(state)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        state_path(args.state_dir).unlink(missing_ok=True)
        shutil.rmtree(args.state_dir / "mariadb" / "data", ignore_errors=True)
    if args.purge:
        shutil.rmtree(args.state_dir, ignore_errors=True)
        print(f"removed {args.state_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help="where state, logs and data live (default: local-stack/ in "
        "TEMPORAL_BOOTSTRAP_STATE_DIR, which defaults to ./.state)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything in the background (reuses a running one)")
    up.add_argument(
        "--without-kubernetes", action="store_true", help="skip the Kubernetes API stand-in"
    )
    up.set_defaults(func=cmd_up)
    run = sub.add_parser("run", help="run in the foreground until Ctrl-C (in-process moto)")
    run.add_argument(
        "--without-kubernetes", action="store_true", help="skip the Kubernetes API stand-in"
    )
    run.set_defaults(func=cmd_run)
    sub.add_parser("status", help="is everything recorded still running?").set_defaults(
        func=cmd_status
    )
    down = sub.add_parser("down", help="stop everything by PID")
    down.add_argument("--purge", action="store_true", help="also delete the state directory")
    down.set_defaults(func=cmd_down)
    args = parser.parse_args(argv)
    args.state_dir = args.state_dir.resolve()
    return int(args.func(args))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the Temporal SDK's runtime threads can abort it
    # (PyGILState_Release, see toolchain notes) after the work is done.
    os._exit(code)
