"""`make run` killed hard leaves Airflow running; `make stop` (and the next `make run`) stop it by the
session `run` recorded, never by process names."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from devstack import airflow, procs, settings
from devstack.__main__ import PORTS, STATE_FILE
from devstack.postgres import port_is_free
from tests.conftest import REPO_ROOT
from tests.fixtures.permissions import assert_private_data_dir, mode
from tests.fixtures.polling import poll_until
from tests.fixtures.sockets import listening_addresses

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _session(tmp_path, script: str) -> subprocess.Popen:
    return subprocess.Popen(["sh", "-c", script], start_new_session=True, cwd=tmp_path)


def test_leftovers_of_a_dead_leader_are_stopped_and_the_record_removed(tmp_path):
    leader = _session(tmp_path, "sleep 300 & sleep 300 & wait")
    try:
        procs.record_airflow(tmp_path, leader.pid)
        poll_until(lambda: len(procs.leftovers(tmp_path)) == 3, 10, "the two sleeps did not start")
        leader.kill()  # the leader dies; its children keep the session id
        leader.wait()
        survivors = procs.leftovers(tmp_path)
        assert len(survivors) == 2 and leader.pid not in survivors
        assert sorted(procs.stop_leftovers(tmp_path, timeout=5)) == sorted(survivors)
        assert procs.session_members(leader.pid) == []
        assert not procs.record_path(tmp_path).exists()
    finally:
        for pid in procs.session_members(leader.pid):
            os.kill(pid, signal.SIGKILL)


COUNTS_SIGTERMS = """
import pathlib, signal, sys, time
received = []
signal.signal(signal.SIGTERM, lambda *_: received.append(time.monotonic()))
pathlib.Path(sys.argv[1]).write_text("ready")
while not received:
    time.sleep(0.05)
time.sleep(1)  # a second signal would arrive by now
pathlib.Path(sys.argv[1]).write_text(str(len(received)))
"""


def test_a_child_is_stopped_by_its_parent_with_one_signal(tmp_path):
    """As devstack.standalone stops the scheduler: a leader that passes SIGTERM on to its child."""
    (tmp_path / "child.py").write_text(COUNTS_SIGTERMS)
    out = tmp_path / "received"
    leader = _session(tmp_path, f"trap 'kill -TERM $child; wait $child; exit 0' TERM; "
                                f"{sys.executable} child.py {out} & child=$!; wait $child")
    try:
        procs.record_airflow(tmp_path, leader.pid)
        poll_until(lambda: out.exists() and out.read_text() == "ready", 10, "the child did not start")
        assert len(procs.stop_leftovers(tmp_path, timeout=10)) == 2
        assert out.read_text() == "1"  # the leader's SIGTERM only
        assert leader.wait(timeout=5) == 0
    finally:
        for pid in procs.session_members(leader.pid):
            os.kill(pid, signal.SIGKILL)


def test_airflow_stop_kills_the_whole_session_when_sigint_is_not_enough(tmp_path):
    """A leader deaf to SIGINT, with a child in a process group of its own (as the api-server runs)."""
    leader = _session(tmp_path, "trap '' INT; sleep 300 & "
                                "python3 -c 'import os, time; os.setpgid(0, 0); time.sleep(300)' & wait")
    try:
        def groups() -> set[int]:
            return {os.getpgid(pid) for pid in procs.session_members(leader.pid)}

        poll_until(lambda: len(groups()) == 2, 10, "the child did not start in a group of its own")
        assert airflow.stop(leader, timeout=1) == -signal.SIGKILL
        poll_until(lambda: procs.session_members(leader.pid) == [], 10, "a member of the session survived")
    finally:
        for pid in procs.session_members(leader.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_recorded_pid_now_used_by_another_process_is_left_alone(tmp_path):
    other = _session(tmp_path, "sleep 300")
    try:
        procs.record_airflow(tmp_path, other.pid)
        record = json.loads(procs.record_path(tmp_path).read_text())
        procs.record_path(tmp_path).write_text(json.dumps({**record, "sid_started": "1"}))
        assert procs.leftovers(tmp_path) == []
        procs.stop_leftovers(tmp_path, timeout=1)
        assert other.poll() is None
        # and a record from before a reboot names nothing
        procs.record_path(tmp_path).write_text(json.dumps({**record, "boot_id": "another boot"}))
        assert procs.leftovers(tmp_path) == []
    finally:
        other.kill()
        other.wait()


def test_a_second_run_for_the_same_data_dir_refuses_while_the_first_lives(tmp_path):
    env = _devstack_env(tmp_path)
    data = tmp_path / "data"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from devstack import procs; "
         "root = Path(sys.argv[1]); assert procs.lock_run(root); procs.record_launcher(root); print('ready', "
         "flush=True); time.sleep(120)", str(data)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        second = subprocess.run([sys.executable, "-m", "devstack", "run"], cwd=REPO_ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"already running for {data} (pid {holder.pid})" in second.stderr
        assert not (data / STATE_FILE).exists()  # nothing was started
    finally:
        holder.kill()
        holder.wait()


def _devstack_env(tmp_path) -> dict[str, str]:
    """A clean environment: the session's own services' variables removed, any free ports."""
    session_keys = ("AIRFLOW", "ZOOMCAMP_", "STORAGE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST")
    env = {k: v for k, v in os.environ.items() if not k.startswith(session_keys)}
    env.update({name: "0" for _, name, _ in PORTS})
    env.update(ZOOMCAMP_DATA_DIR=str(tmp_path / "data"), ZOOMCAMP_ENV_FILE=str(tmp_path / ".env"),
               ZOOMCAMP_SETTINGS_FILE=str(tmp_path / "zoomcamp.env"))
    return env


def _api_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@pytest.mark.stack
@pytest.mark.timeout(600)
def test_make_stop_stops_what_a_killed_make_run_left(tmp_path):
    env, data = _devstack_env(tmp_path), tmp_path / "data"
    log = open(tmp_path / "devstack.log", "wb")
    run = subprocess.Popen([sys.executable, "-m", "devstack", "run"], cwd=REPO_ROOT, env=env, stdout=log,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    sid = None
    try:
        ports = poll_until(lambda: (data / STATE_FILE).exists() and json.loads((data / STATE_FILE).read_text()),
                      120, "services.json not written")
        poll_until(lambda: run.poll() is None and _api_answers(ports["api_port"]), 300,
              f"the api-server did not answer; see {tmp_path / 'devstack.log'}")
        sid = procs.read_record(data)["sid"]
        assert len(procs.session_members(sid)) >= 4  # devstack.standalone, api-server, scheduler, dag-processor, ...

        # This stack's log servers listen on loopback only, at the ports chosen for it.
        for key in ("worker_log_port", "trigger_log_port"):
            poll_until(lambda: listening_addresses(ports[key]), 60, f"nothing listens on {key} {ports[key]}")
            assert listening_addresses(ports[key]) == {"127.0.0.1"}, key
        # What holds secrets is private, the password file too after the api-server added the admin's.
        assert mode(tmp_path / ".env") == 0o600
        assert_private_data_dir(data)
        passwords = data / "airflow" / settings.PASSWORDS_FILE
        assert mode(passwords) == 0o600 and "admin" in json.loads(passwords.read_text())

        run.send_signal(signal.SIGKILL)  # the launcher only, as a closed terminal or `kill -9` would
        run.wait()
        time.sleep(1)
        assert procs.session_members(sid), "Airflow should have outlived its launcher"

        # `make services` (Airflow run elsewhere, e.g. Astro) stops them too, and keeps the services
        services = subprocess.run([sys.executable, "-m", "devstack", "services"], cwd=REPO_ROOT, env=env,
                                  capture_output=True, text=True, timeout=300)
        assert services.returncode == 0, services.stderr
        assert "left running" in services.stdout
        assert procs.session_members(sid) == []
        assert not _api_answers(ports["api_port"])

        stop = subprocess.run([sys.executable, "-m", "devstack", "stop"], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stderr
        busy = {key: port for key, port in ports.items() if not port_is_free(port)}
        assert not busy, f"ports still in use: {busy}"
        assert not procs.record_path(data).exists()
    finally:
        log.close()
        if run.poll() is None:
            run.kill()
            run.wait()
        if sid is not None:
            for pid in procs.session_members(sid):
                os.kill(pid, signal.SIGKILL)
        subprocess.run([sys.executable, "-m", "devstack", "stop"], cwd=REPO_ROOT, env=env, capture_output=True,
                       timeout=120)
        shutil.rmtree(data, ignore_errors=True)
