"""devstack.component: a stop signal whose SystemExit Python dropped in a callback is sent again, in a real
process; a supervisor with no socket left to watch (the triggerer's of its trigger runner) sees its child's exit
as soon as it happens, through Airflow's own exit check, on a real child process."""
from __future__ import annotations

import selectors
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor
from airflow.sdk.execution_time.supervisor import PsutilTracker

from devstack import component
from tests.conftest import REPO_ROOT

# Far longer than the child lives: a wait that sleeps it out instead of seeing the exit fails the test's timeout.
LONG_WAIT = 120


class WatchedRunner(TriggerRunnerSupervisor):
    """The triggerer's runner supervisor, changed as devstack.component changes WatchedSubprocess (here on this
    subclass only)."""


assert component.watch_exit_without_sockets(WatchedRunner)


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
    component.wait_for_exit(child.pid, LONG_WAIT)
    assert component.exited(child.pid)
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


def test_a_class_without_those_parts_is_left_alone():
    assert component.watch_exit_without_sockets(type("Unrelated", (), {})) is False


# A process whose SIGINT handler exits as the scheduler's does, signalled while a weakref callback runs: Python drops
# that SystemExit ("Exception ignored in"). It exits 0 only if its handler runs again at an ordinary point;
# otherwise it runs on to exit 3.
SIGNAL_IN_A_CALLBACK = """
import os, signal, sys, time, weakref
{install}
def _exit_gracefully(signum, frame):
    sys.exit(0)
signal.signal(signal.SIGINT, _exit_gracefully)
class Collected: pass
def callback(ref):
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(1000):  # the handler runs here, inside the callback
        pass
kept = Collected()
ref = weakref.ref(kept, callback)
del kept
time.sleep(2)
sys.exit(3)
"""


def _signalled_in_a_callback(install: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SIGNAL_IN_A_CALLBACK.format(install=install)],
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)


def test_a_stop_signal_dropped_in_a_callback_is_sent_again_and_ends_the_process():
    out = _signalled_in_a_callback("from devstack import component; component.resend_lost_stop_signals()")
    assert "Exception ignored in" in out.stderr
    assert f"signal {int(signal.SIGINT)} {component.SIGNAL_SENT_AGAIN}" in out.stderr
    assert out.returncode == 0, out.stderr


def test_without_it_python_drops_that_signal_and_the_process_runs_on():
    out = _signalled_in_a_callback("")
    assert "Exception ignored in" in out.stderr and "SystemExit" in out.stderr
    assert out.returncode == 3


def test_a_systemexit_raised_elsewhere_is_not_taken_for_a_signal():
    def raises_exit():
        sys.exit(1)
    try:
        raises_exit()
    except SystemExit as exc:
        assert component.handled_signal(exc.__traceback__) is None


# Garbage in a reference cycle left by the command: Python's last collection at exit would run its __del__.
GARBAGE_LEFT_AT_EXIT = """
import atexit, os
from devstack import component
class Garbage:
    def __del__(self):
        os.write(1, b"collected at exit\\n")
def command():
    garbage = Garbage()
    garbage.itself = garbage
atexit.register(os.write, 1, b"atexit handler ran\\n")
{run}
"""


def _exit_output(run: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", GARBAGE_LEFT_AT_EXIT.format(run=run)], capture_output=True,
                         text=True, timeout=60, cwd=REPO_ROOT, check=True)
    return out.stdout.splitlines()


def test_what_the_command_leaves_is_not_collected_at_exit_and_atexit_handlers_still_run():
    assert _exit_output("component.run_without_collection_at_exit(command)") == ["atexit handler ran"]
    assert _exit_output("command()") == ["atexit handler ran", "collected at exit"]  # Python's own exit
