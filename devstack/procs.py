"""What `make run` leaves running, found by its own records, never by process names.

`make run` starts Airflow's components (devstack.standalone) in a new session (`start_new_session=True`),
so the api-server, scheduler, dag-processor, triggerer, log server, the LocalExecutor's workers and the
tasks' own process groups all share that session's id, which is devstack.standalone's pid. `run` records
it in `<data dir>/airflow-standalone.json` together with its own pid, both with their start times
and the boot id; a clean exit removes the record. When the launcher dies hard (SIGKILL, a closed
terminal), the record stays and `make stop` or the next `make run` stops that session.

A recorded id is trusted only while it still names the same processes: after a reboot (other boot
id) the record is stale; a living process with the recorded pid but another start time is someone
else's. A session id is not reused while any process of the session exists, so once its leader has
exited, the processes still carrying the recorded session id are the ones it started.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from devstack.private import DIR_MODE

RECORD_FILE = "airflow-standalone.json"
LOCK_FILE = "run.lock"
PROC = Path("/proc")
_run_lock: int | None = None


def record_path(root: Path) -> Path:
    return root / RECORD_FILE


def boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state, ppid, pgrp, session, ...), None when there is no such process."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def start_time(pid: int) -> str | None:
    """An identity for the process `pid` (its start time), None when it does not exist or is a zombie."""
    if PROC.joinpath("self").exists():
        fields = _stat(pid)
        if fields is None or fields[0] == "Z":
            return None
        return fields[19]  # field 22: starttime, in clock ticks since boot
    result = subprocess.run(["ps", "-o", "lstart=,stat=", "-p", str(pid)], capture_output=True, text=True)
    line = result.stdout.strip()
    return None if not line or line.endswith("Z") else line.rsplit(None, 1)[0]


def alive(pid: int | None, started: str | None) -> bool:
    return bool(pid) and started is not None and start_time(pid) == started


def parent_pid(pid: int) -> int | None:
    """The parent of `pid`, None when there is no such process."""
    if PROC.joinpath("self").exists():
        fields = _stat(pid)
        return int(fields[1]) if fields else None
    result = subprocess.run(["ps", "-o", "ppid=", "-p", str(pid)], capture_output=True, text=True)
    return int(result.stdout) if result.stdout.strip() else None


def session_members(sid: int) -> list[int]:
    """Pids of the live (non-zombie) processes of session `sid` (process group `sid` where /proc is absent)."""
    if PROC.joinpath("self").exists():
        members = []
        for entry in PROC.iterdir():
            if entry.name.isdigit() and (fields := _stat(int(entry.name))) and fields[0] != "Z":
                if int(fields[3]) == sid:
                    members.append(int(entry.name))
        return members
    result = subprocess.run(["ps", "-A", "-o", "pid=,pgid=,stat="], capture_output=True, text=True)
    return [int(pid) for pid, pgid, stat in (line.split()[:3] for line in result.stdout.splitlines())
            if int(pgid) == sid and not stat.startswith("Z")]


# -- the record ------------------------------------------------------------------------------------
def read_record(root: Path) -> dict | None:
    try:
        record = json.loads(record_path(root).read_text())
    except (OSError, ValueError):
        return None
    if record.get("boot_id", "") != boot_id():
        return None  # written before a reboot: every pid in it is gone
    return record


def lock_run(root: Path) -> bool:
    """Take `root`'s run lock for the life of this process; False when another `run` holds it. The
    kernel releases it when the holder dies, however it dies; Airflow does not inherit it (Python's
    descriptors are not inheritable)."""
    global _run_lock
    root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)  # start_services narrows an existing one
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _run_lock = fd
    return True


def record_launcher(root: Path) -> None:
    """Written by `run` before it starts anything: this process launches Airflow for `root`."""
    me = os.getpid()
    _write(root, {"boot_id": boot_id(), "launcher_pid": me, "launcher_started": start_time(me)})


def record_airflow(root: Path, pid: int) -> None:
    """Airflow's components run under `pid` (devstack.standalone), leader of its own session."""
    record = read_record(root) or {"boot_id": boot_id()}
    _write(root, {**record, "sid": pid, "sid_started": start_time(pid)})


def forget(root: Path) -> None:
    record_path(root).unlink(missing_ok=True)


def _write(root: Path, record: dict) -> None:
    root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)  # start_services narrows an existing one
    tmp = record_path(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(record_path(root))


def live_launcher(root: Path) -> int | None:
    """The pid of a `make run` still serving `root` (another than this process), else None."""
    record = read_record(root)
    if not record or record.get("launcher_pid") == os.getpid():
        return None
    pid = record.get("launcher_pid")
    return pid if alive(pid, record.get("launcher_started")) else None


def leftovers(root: Path) -> list[int]:
    """Pids of the recorded Airflow session that still run."""
    record = read_record(root)
    if not record or not record.get("sid"):
        return []
    sid = record["sid"]
    leader_now = start_time(sid)
    if leader_now is not None and leader_now != record.get("sid_started"):
        return []  # the pid now belongs to another process: the recorded session has ended
    return session_members(sid)


def stop_launcher(root: Path, timeout: float = 60) -> bool:
    """Ask a live `make run` for `root` to stop as Ctrl-C would; True when it has exited."""
    pid = live_launcher(root)
    if pid is None:
        return True
    started = read_record(root)["launcher_started"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def stop_leftovers(root: Path, timeout: float = 30) -> list[int]:
    """Stop what the recorded Airflow session left: SIGTERM once to each process whose parent is not in
    the session (devstack.standalone, or what outlived it), which stops its own children; SIGKILL to
    every process left after `timeout`. A child is not signalled beside its parent: the scheduler, told
    twice, stops waiting for its LocalExecutor workers, which ignore SIGTERM, and hangs at exit until
    killed. Returns the pids found at first; removes the record when none remains."""
    found = leftovers(root)
    record = read_record(root)
    deadline = time.monotonic() + timeout
    terminated: set[int] = set()
    while pids := leftovers(root):
        late = time.monotonic() > deadline
        if time.monotonic() > deadline + 15:
            raise RuntimeError(f"processes {pids} of session {record['sid']} survived SIGKILL")
        for pid in pids if late else [pid for pid in pids if parent_pid(pid) not in pids]:
            if late or pid not in terminated:
                try:
                    os.kill(pid, signal.SIGKILL if late else signal.SIGTERM)
                except ProcessLookupError:
                    pass
                terminated.add(pid)
        time.sleep(0.3)
    if not (record and alive(record.get("launcher_pid"), record.get("launcher_started"))):
        forget(root)
    return found
