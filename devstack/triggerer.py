"""`airflow triggerer` that notices at once when its trigger runner has exited:
`python -m devstack.triggerer <its arguments>` (devstack.standalone starts the triggerer so).

Stopping, the triggerer tells its trigger runner (a child process) to stop and gives it up to 10 s,
servicing the runner's sockets meanwhile with a `select` that returns when one of them has something and
checking for the runner's exit after each. The runner closes its sockets on its way out, so that `select`
can be left watching nothing, and then it sleeps out the whole 10 s before the exit is seen: on the 2-core
machine, 7 of 18 stops in six runs of `tests/test_gcp_switch.py` took 10 s more than the others
(docs/operations.md#stopping-with-tasks-running). Here a runner supervisor with no socket left to watch waits
for the process itself instead. Nothing else changes: the same checks run, in the same order, and Airflow
reaps the runner as before (the wait below only looks, with WNOWAIT).

This reaches into Airflow's task SDK (`_service_subprocess` and `selector` are its own, not a public API):
if they are not there, the triggerer runs as Airflow ships it and says so.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

EXIT_POLL_SECONDS = 0.02
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


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
    """Make `supervisor_class` (an Airflow WatchedSubprocess) wait for its process, not on an empty `select`,
    once it has no socket left; False if the class has not the parts this relies on."""
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


def main() -> None:
    from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor

    if not watch_exit_without_sockets(TriggerRunnerSupervisor):
        print("devstack.triggerer: this Airflow's TriggerRunnerSupervisor has no _service_subprocess/selector; "
              "the triggerer may take up to 10 s longer to stop", file=sys.stderr, flush=True)
    from airflow.__main__ import main as airflow_main

    sys.argv = [AIRFLOW, "triggerer", *sys.argv[1:]]
    airflow_main()


if __name__ == "__main__":
    main()
