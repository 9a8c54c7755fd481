"""What an idle `make run` holds: `python -m devstack run` on throw-away data and free ports, as a user starts it;
once every DAG file is parsed, over the next 60 s (BENCH_IDLE_SECONDS): the proportional set size (PSS) of every
process it started (Airflow's components, their workers, Postgres, the emulators) and the CPU they use, summed
per component.

`python -m bench.idle_stack`. Prints the time from the start to a UI that answers (`start_to_ui_s=`) and where
it goes (START_PHASES, read from the time each phase's first line appears in the output, and the first parse
of every DAG file), one line per component, `idle_pss_mb=N` and `idle_cpu_percent=N`; asserts nothing. A
process is the stack's when it is the `devstack run` process, a service's (its pid file) or a descendant of
either.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

from bench.services import machine_line
from devstack import component as devstack_component
from tests.fixtures.devstack_run import DevstackRun, devstack_env
from tests.fixtures.polling import poll_until

IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", 60))
DAG_FILES = len(list((Path(__file__).resolve().parents[1] / "dags").glob("*.py")))
# phase -> the output line that ends it (devstack/__main__.py, devstack/standalone.py)
START_PHASES = {
    # Postgres (initdb on a fresh dir); the emulators start beside it and beside the metadata set-up
    "services": re.compile(r"^Migrating Airflow's metadata", re.M),
    "metadata": re.compile(r"^[a-z-]+ +\| ", re.M),  # db migrate, pools, connections; then a component's first line
}


class OutputTimes(threading.Thread):
    """When each START_PHASES line first appears in the file `devstack run` writes its output to."""

    def __init__(self, path: Path, started: float):
        super().__init__(daemon=True)
        self.path, self.started, self.seen = path, started, {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and len(self.seen) < len(START_PHASES):
            text = self.path.read_text(errors="replace") if self.path.exists() else ""
            for phase, line in START_PHASES.items():
                if phase not in self.seen and line.search(text):
                    self.seen[phase] = time.monotonic() - self.started
            time.sleep(0.1)


def component(proc: psutil.Process) -> str:
    """A short name: `postgres`, the Airflow command (`airflow scheduler`, `airflow worker` for the
    LocalExecutor's), the Python module (`devstack.gcs_emulator`), or the program. Airflow and Postgres
    retitle their processes, so the whole command line is read as one string."""
    words = proc.cmdline() or [proc.name()]
    text = " ".join(words)
    if Path(words[0]).name.startswith("postgres"):
        return "postgres"
    if "-m" in words[:3] and words.index("-m") + 1 < len(words):
        module = words[words.index("-m") + 1]
        if module == devstack_component.__name__ and words.index("-m") + 2 < len(words):
            return f"airflow {words[words.index('-m') + 2]}"
        return module
    if match := re.search(r"airflow (?:-\S+ )*([a-z][a-z_-]+)", text):
        return f"airflow {match.group(1)}"
    return Path(words[0]).name


def stack_processes(run_pid: int, data_dir: Path) -> list[psutil.Process]:
    """`devstack run` and everything under it, and each service with its children: the emulators (their pid
    files) and Postgres (its postmaster.pid), which run in sessions of their own."""
    roots = [run_pid]
    for pid_file in data_dir.glob("*.pid"):
        roots.append(json.loads(pid_file.read_text())["pid"])
    for postmaster in data_dir.rglob("postmaster.pid"):
        roots.append(int(postmaster.read_text().splitlines()[0]))
    found: dict[int, psutil.Process] = {}
    for pid in roots:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


def pss_by_component(procs: list[psutil.Process]) -> dict[str, tuple[int, float]]:
    """component -> (processes, PSS in MB)."""
    totals: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for proc in procs:
        try:
            pss = proc.memory_full_info().pss / 2**20
            name = component(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        totals[name][0] += 1
        totals[name][1] += pss
    return {name: (n, mb) for name, (n, mb) in totals.items()}


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, tuple[str, float]]:
    """pid -> (component, user + system CPU seconds so far)."""
    seconds = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
            seconds[proc.pid] = (component(proc), times.user + times.system)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return seconds


def cpu_by_component(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                     seconds: float) -> dict[str, float]:
    """component -> share of one core used between the two readings, in percent (processes in both)."""
    totals: dict[str, float] = defaultdict(float)
    for pid, (name, used) in after.items():
        if pid in before:
            totals[name] += (used - before[pid][1]) / seconds * 100
    return dict(totals)


def main() -> None:
    print(machine_line())
    root = Path(tempfile.mkdtemp(prefix="zoomcamp-bench-idle-"))
    try:
        (root / "home").mkdir()
        env = devstack_env(root, quick=False, HOME=str(root / "home"))
        started = time.monotonic()
        times = OutputTimes(root / "devstack-run.log", started)
        times.start()
        with DevstackRun(env, root / "devstack-run.log") as run:
            ui = time.monotonic() - started
            times.done.set()
            print(f"start_to_ui_s={ui:.1f}  (services, metadata set-up, Airflow's components, until the "
                  "api-server answers; the venv already installed)")
            previous = 0.0
            for phase, at in sorted({**times.seen, "components until the UI answers": ui}.items(),
                                    key=lambda item: item[1]):
                print(f"  {phase:<40} {at - previous:6.1f} s")
                previous = at
            poll_until(lambda: run.api("GET", "/api/v2/dags?limit=1")["total_entries"] >= DAG_FILES, 300,
                       "the DAG files were not all parsed")
            print(f"start_to_all_dags_s={time.monotonic() - started:.1f}  (every DAG file parsed once)")
            data_dir = Path(env["ZOOMCAMP_DATA_DIR"])
            cpu_before = cpu_seconds(stack_processes(run.proc.pid, data_dir))
            time.sleep(IDLE_SECONDS)
            procs = stack_processes(run.proc.pid, data_dir)
            figures = pss_by_component(procs)
            cpu = cpu_by_component(cpu_before, cpu_seconds(procs), IDLE_SECONDS)
        print(f"idle {IDLE_SECONDS:.0f} s after every DAG file was parsed: {len(procs)} processes")
        for name, (n, mb) in sorted(figures.items(), key=lambda item: -item[1][1]):
            print(f"  {name:<40} {n:>2} process(es) {mb:7.0f} MB  {cpu.get(name, 0):5.1f} % of a core")
        print(f"idle_pss_mb={sum(mb for _, mb in figures.values()):.0f}")
        print(f"idle_cpu_percent={sum(cpu.values()):.1f}  (of one core, over those {IDLE_SECONDS:.0f} s)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
