from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from local_stack.processes import (
    ManagedProcess,
    ProcessStartError,
    free_ports,
    pid_alive,
    ports_free,
    process_start_time,
    stop_pid,
    tcp_open,
)


def _children_of(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[2] == str(pgid) and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def test_ports_free_is_false_while_one_port_is_listened_on() -> None:
    ports = free_ports(2)
    assert ports_free(ports)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", ports[1]))
        listener.listen()
        assert not ports_free(ports)
    assert ports_free(ports)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert not any(tcp_open("127.0.0.1", p) for p in ports)


def test_stop_kills_whole_process_group(tmp_path: Path) -> None:
    # A shell that ignores SIGTERM and has a grandchild: both must end up gone.
    proc = ManagedProcess(
        "sh",
        ["sh", "-c", "trap '' TERM; sleep 300 & sleep 300; wait"],
        log_path=tmp_path / "sh.log",
    ).start()
    assert proc.pid is not None
    time.sleep(0.2)
    members = _children_of(proc.pid)
    assert len(members) >= 2
    proc.stop(timeout=1)
    assert not any(pid_alive(p) for p in members)


def test_exit_before_ready_reports_log(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "fails",
        ["sh", "-c", "echo boom-marker; exit 7"],
        ready=lambda _p: False,
        log_path=tmp_path / "f.log",
    )
    with pytest.raises(ProcessStartError, match="status 7(.|\n)*boom-marker"):
        proc.start()


def test_ready_timeout_stops_process(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "slow", ["sleep", "300"], ready=lambda _p: False, ready_timeout=0.3, log_path=None
    )
    with pytest.raises(ProcessStartError, match="not ready"):
        proc.start()
    assert proc.pid is not None and not pid_alive(proc.pid)


def test_stop_pid_ignores_reused_pid(tmp_path: Path) -> None:
    proc = ManagedProcess("sleep", ["sleep", "300"]).start()
    assert proc.pid is not None
    try:
        # A recorded start time that does not match means "not our process": leave it.
        assert stop_pid(proc.pid, start_time="1") is False
        assert pid_alive(proc.pid, process_start_time(proc.pid))
    finally:
        proc.stop()
    assert not pid_alive(proc.pid)
