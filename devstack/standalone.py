"""Airflow's components on one machine, as `airflow standalone` runs them, with the log servers on loopback:
`python -m devstack.standalone` (started by devstack.airflow.start_standalone, in the environment
devstack.settings gives).

`airflow standalone` runs the scheduler and the triggerer with their own log servers, which listen on every
interface. Here they run with --skip-serve-logs and devstack.log_server serves the task logs on 127.0.0.1
instead. The metadata database is migrated beforehand (devstack.airflow.prepare_metadata); the
api-server generates the simple auth manager's passwords on its first start and prints them.

With the CeleryExecutor (`make run EXECUTOR=celery`) the Celery workers devstack.workers describes run
beside them, each with its own environment. Each component's output lines are printed with its name in
front. SIGINT is for the whole process group (devstack.airflow.stop sends it so): each component in it has
it already, and this process waits for them. SIGTERM is for this process alone: it passes one SIGTERM to
each. A component is never signalled twice, which would cut its shutdown short (the scheduler would stop
waiting for its LocalExecutor workers, which ignore SIGINT, and hang at exit until killed), but for one whose
signal can be lost (RESIGNALLED). When one exits by itself, the others are stopped and this process exits
with its code.

The api-server and the log server (SERVING) run in process groups of their own, out of reach of that
SIGINT, and are stopped last, once the scheduler and the workers have exited: a task running at the stop
is interrupted by its supervisor, which then reports the task's end through the api-server's Execution
API (stopped first, it would retry for up to half a minute against a closed port, and the task's state
would stay `running`).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from devstack import component, preloaded, workers

# The long-running ones through devstack.component: `airflow <command>` with the DAGs' providers preloaded
# where tasks are forked, stop signals and child exits that are never missed, and no collection at exit.
COMPONENTS = {
    "api-server": component.command("api-server"),
    "scheduler": component.command("scheduler", "--skip-serve-logs"),
    "dag-processor": component.command("dag-processor"),
    "triggerer": component.command("triggerer", "--skip-serve-logs"),
    "log-server": [sys.executable, "-m", "devstack.log_server"],
}
SERVING = ("api-server", "log-server")  # what running tasks call: stopped after the others
# The dag-processor's signal handler ends it by raising SystemExit, which Python discards when the signal
# lands in an at-fork callback ("Exception ignored in: <function _releaseLock>"), and it forks a parser per
# DAG file: so it can miss its signal and run on. devstack.component sends it such a signal again; should it
# still run this long after the first, it gets a SIGTERM from here too (its handler only ends its parsers, so
# a second one does no harm).
RESIGNALLED = ("dag-processor",)
RESIGNAL_AFTER = 10.0
_print_lock = threading.Lock()


def _forward(name: str, stream) -> None:
    for line in stream:
        with _print_lock:
            sys.stdout.write(f"{name:13} | {line.decode(errors='replace').rstrip()}\n")
            sys.stdout.flush()


class _Stop(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum, frame):
    raise _Stop(signum)


def components() -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (command, extra environment): Airflow's components, plus the Celery workers when that is the
    executor."""
    started = {name: (command, {}) for name, command in COMPONENTS.items()}
    preloaded.enabled(os.environ)  # a ZOOMCAMP_PRELOAD_PROVIDERS that means neither stops the start here
    if os.environ.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor":
        started.update(workers.commands(os.environ, component.command()))
    return started


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    running: dict[str, subprocess.Popen] = {}
    group_signalled = False
    try:
        started = components()
    except workers.IsolationUnavailable as exc:
        print(exc, flush=True)
        return 1
    try:
        for name, (command, extra_env) in started.items():
            running[name] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env={**os.environ, **extra_env},
                                             process_group=0 if name in SERVING else None)
            threading.Thread(target=_forward, args=(name, running[name].stdout), daemon=True).start()
        while True:
            for name, proc in running.items():
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}: stopping the other components", flush=True)
                    return proc.returncode or 1
            time.sleep(0.5)
    except _Stop as stop:
        group_signalled = stop.signum == signal.SIGINT
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the stopping short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop(running, group_signalled)


def _stop(running: dict[str, subprocess.Popen], group_signalled: bool) -> None:
    """The scheduler, the workers and the others first, then those serving the tasks (SERVING), each
    signalled once (but RESIGNALLED). devstack.airflow.stop kills the whole session when this takes too
    long."""
    serving = {name: proc for name, proc in running.items() if name in SERVING}
    others = {name: proc for name, proc in running.items() if name not in SERVING}
    for stage, signalled in ((others, group_signalled), (serving, False)):
        for proc in stage.values():
            if proc.poll() is None and not signalled:
                proc.terminate()
        signalled_at = time.monotonic()
        for name, proc in stage.items():
            _wait(name, proc, signalled_at)


def _wait(name: str, proc: subprocess.Popen, signalled_at: float) -> None:
    if name not in RESIGNALLED:
        proc.wait()
        return
    deadline = signalled_at + RESIGNAL_AFTER
    while True:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return
        except subprocess.TimeoutExpired:
            print(f"{name} still runs {RESIGNAL_AFTER:.0f} s after its signal: SIGTERM again", flush=True)
            proc.terminate()
            deadline = time.monotonic() + RESIGNAL_AFTER


if __name__ == "__main__":
    sys.exit(main())
