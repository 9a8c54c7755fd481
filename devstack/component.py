"""Airflow's long-running commands as devstack starts them: `python -m devstack.component <airflow arguments>`
runs `airflow <airflow arguments>` (devstack.standalone starts every Airflow component and the Celery workers
so), with the DAGs' providers imported first in the processes that fork tasks (devstack.preloaded), two of
Airflow's ways of stopping made dependable and its exit made quick:

- **A stop signal lost in a callback is sent again.** The scheduler and the dag-processor end on SIGINT or
  SIGTERM by raising SystemExit from their signal handler. Python runs a handler between two bytecodes of
  whatever runs at that moment; when that is a garbage-collection or weakref callback (SQLAlchemy's
  `_collection_gced`) or an at-fork callback (logging's `_releaseLock`), Python prints "Exception ignored
  in: ..." and drops the SystemExit, and the process runs on as if never signalled: the scheduler did so in
  two runs of `tests/test_gcp_switch.py` in a row on the 2-core machine, and the stack was killed 30 s later.
  Here a dropped SystemExit raised by a signal handler sends the process that signal again, so the handler
  runs once more at an ordinary point. The first run's SystemExit was dropped, so this second one is the
  only one that takes effect: no shutdown already under way is cut short.
- **A child's exit is seen when it happens.** A supervisor (the triggerer's of its trigger runner, a worker's
  of its task) services its child's sockets with a `select` that returns when one of them has something,
  and checks for the child's exit after each. The child closes its sockets on its way out, so that `select`
  can be left watching nothing, and then it sleeps out its whole timeout before the exit is seen: 10 s for a
  stopping triggerer (7 of 18 stops in six runs of `tests/test_gcp_switch.py`), up to `[workers]
  min_heartbeat_interval` after a task (4 of 24 tasks in `tests/test_05_backfills.py`). Here a supervisor
  with no socket left waits for the child process itself; the same checks run, in the same order, and Airflow
  reaps the child as before (the wait here only looks, with WNOWAIT).

- **An exit that does not collect the whole heap.** At exit Python runs one last garbage collection over
  every object still alive: the api-server spent 2 s in it after "Finished server process" (py-spy:
  `gc_collect_main`, no Python frame), and a stop of the stack waited for it. Here the objects alive when the
  command returns are frozen first, so that collection skips them; the process ends as soon as its atexit
  handlers have run, and the operating system frees its memory. A stop with Ctrl-C of `make run` took 4.7 to
  5.4 s without it, 1.7 to 2.0 s with it.

The second reaches into Airflow's task SDK (`_service_subprocess` and `selector` are its own, not a public API):
if they are not there, the command runs without it and says so.
"""
from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
from pathlib import Path

from devstack import preloaded

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
EXIT_POLL_SECONDS = 0.02
RESEND_AFTER_SECONDS = 0.05
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The commands whose processes fork the tasks: they import the DAGs' providers first (devstack.preloaded).
FORKS_TASKS = ("scheduler", "celery")
# What the log says when a lost stop signal is sent again (tests/test_gcp_switch.py counts it).
SIGNAL_SENT_AGAIN = "was lost in a callback; sending it again"


def command(*arguments: str) -> list[str]:
    """The command line that runs `airflow <arguments>` as this module does."""
    return [sys.executable, "-m", __name__, *arguments]


# -- a stop signal lost in a callback -------------------------------------------------------------------------
def resend_lost_stop_signals() -> None:
    """From now on, a SystemExit that Python drops (sys.unraisablehook) after a stop signal's handler raised it
    sends this process that signal again."""
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        previous(unraisable)
        if isinstance(unraisable.exc_value, SystemExit):
            signum = handled_signal(unraisable.exc_traceback)
            if signum is not None:
                print(f"devstack.component: signal {signum} {SIGNAL_SENT_AGAIN}", file=sys.stderr, flush=True)
                # Sent from here, it would be handled at once, inside this hook, and dropped again.
                threading.Timer(RESEND_AFTER_SECONDS, os.kill, (os.getpid(), signum)).start()

    sys.unraisablehook = hook


def handled_signal(traceback) -> int | None:
    """The stop signal whose handler is among the traceback's frames (a handler's `signum` argument), if any."""
    while traceback is not None:
        signum = traceback.tb_frame.f_locals.get("signum")
        if isinstance(signum, int) and signum in STOP_SIGNALS:
            return signum
        traceback = traceback.tb_next
    return None


# -- a child's exit seen when it happens ----------------------------------------------------------------------
def exited(pid: int) -> bool:
    """Whether the child `pid` has exited, without reaping it (its parent's own wait still gets its code)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already, or not our child
        return True


def wait_for_exit(pid: int, timeout: float) -> None:
    """Until the child `pid` has exited or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not exited(pid) and time.monotonic() < deadline:
        time.sleep(EXIT_POLL_SECONDS)


def watch_exit_without_sockets(supervisor_class) -> bool:
    """Make `supervisor_class` (Airflow's WatchedSubprocess or a subclass) wait for its process, not on an empty
    `select`, once it has no socket left; False if the class has not the parts this relies on."""
    service = getattr(supervisor_class, "_service_subprocess", None)
    fields = {field.name for field in getattr(supervisor_class, "__attrs_attrs__", ())}
    if service is None or not {"selector", "pid"} <= fields:
        return False

    def service_subprocess(self, max_wait_time, raise_on_timeout=False, expect_signal=None):
        if not self.selector.get_map():
            wait_for_exit(self.pid, max_wait_time)
            max_wait_time = 0
        return service(self, max_wait_time, raise_on_timeout=raise_on_timeout, expect_signal=expect_signal)

    supervisor_class._service_subprocess = service_subprocess
    return True


# -- an exit that does not collect the whole heap --------------------------------------------------------------
def run_without_collection_at_exit(command) -> None:
    """Run `command`; what it leaves is frozen (gc.freeze), so Python's exit does not collect it. The atexit
    handlers (logging's flush, multiprocessing's join of the LocalExecutor's workers) still run."""
    try:
        command()
    finally:
        gc.freeze()


def main() -> None:
    arguments = sys.argv[1:]
    resend_lost_stop_signals()
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    if not watch_exit_without_sockets(WatchedSubprocess):
        print("devstack.component: this Airflow's WatchedSubprocess has no _service_subprocess/selector; "
              "a stop may wait out Airflow's timeouts", file=sys.stderr, flush=True)
    if arguments[:1] and arguments[0] in FORKS_TASKS and preloaded.enabled(os.environ):
        preloaded.preload_for_dags()
    from airflow.__main__ import main as airflow_main

    sys.argv = [AIRFLOW, *arguments]
    run_without_collection_at_exit(airflow_main)


if __name__ == "__main__":
    main()
