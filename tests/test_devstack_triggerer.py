"""devstack.triggerer: a trigger runner supervisor with no socket left to watch sees its runner's exit as soon
as it happens, through Airflow's own exit check, on a real child process."""
from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import time

import psutil
import pytest
from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor
from airflow.sdk.execution_time.supervisor import PsutilTracker

from devstack import standalone, triggerer

# Far longer than the child lives: a wait that sleeps it out instead of seeing the exit fails the test's timeout.
LONG_WAIT = 120


class WatchedRunner(TriggerRunnerSupervisor):
    """The triggerer's runner supervisor, changed as devstack.triggerer changes it (on this subclass only)."""


assert triggerer.watch_exit_without_sockets(WatchedRunner)


def _supervising(child: subprocess.Popen, selector: selectors.BaseSelector) -> WatchedRunner:
    """The supervisor's state around `child` that the exit check reads: its process, its selector, no exit yet."""
    runner = WatchedRunner.__new__(WatchedRunner)
    runner.pid = child.pid
    runner._process = PsutilTracker(psutil.Process(child.pid))
    runner.selector = selector
    runner._exit_code = None
    runner._process_exit_monotonic = None
    return runner


def _child(seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])


@pytest.mark.timeout(30)
def test_a_runner_with_no_socket_left_is_seen_exiting_when_it_exits():
    child = _child(0.5)
    try:
        assert _supervising(child, selectors.DefaultSelector())._service_subprocess(max_wait_time=LONG_WAIT) == 0
    finally:
        child.kill()
        child.wait()


def test_a_runner_still_running_is_waited_for_no_longer_than_asked():
    child = _child(60)
    try:
        runner = _supervising(child, selectors.DefaultSelector())
        started = time.monotonic()
        assert runner._service_subprocess(max_wait_time=0.3) is None
        assert time.monotonic() - started < 5
        assert runner._exit_code is None
    finally:
        child.kill()
        child.wait()


def test_the_exit_seen_leaves_the_child_for_its_parent_to_reap():
    child = _child(0.1)
    triggerer.wait_for_exit(child.pid, LONG_WAIT)
    assert triggerer.exited(child.pid)
    assert child.wait(timeout=5) == 0  # not reaped by the look: its code is still there for the parent


def test_with_a_socket_to_watch_the_supervisor_still_services_it():
    """While the runner's sockets are open, Airflow's `select` waits on them as before: a message is handled
    as soon as it comes, not after a wait for the process."""
    child = _child(60)
    ours, theirs = socket.socketpair()
    received = []
    selector = selectors.DefaultSelector()
    selector.register(ours, selectors.EVENT_READ, (lambda sock: received.append(sock.recv(16)) or True,
                                                   lambda sock: None))
    try:
        theirs.sendall(b"hello")
        started = time.monotonic()
        assert _supervising(child, selector)._service_subprocess(max_wait_time=LONG_WAIT) is None
        assert received == [b"hello"]
        assert time.monotonic() - started < LONG_WAIT / 2
    finally:
        child.kill()
        child.wait()
        ours.close()
        theirs.close()


def test_the_devstack_triggerer_is_the_patched_one():
    assert standalone.COMPONENTS["triggerer"][1:] == ["-m", "devstack.triggerer", "--skip-serve-logs"]
    assert triggerer.watch_exit_without_sockets(type("Unrelated", (), {})) is False
