"""The copilot's validation runs drafts only inside the bubblewrap sandbox (include/zoomcamp/ai/copilot/sandbox.py).

Each hostile draft passes the static checks, so it is imported; each test then looks from the host for
what it tried: a marker file outside the sandbox (in the test's tmp dir, named by absolute path), a
connection to a loopback listener the test opened, a process left running, a file planted in `dags/`,
a secret read back through the import error (the text that goes to the model). The validation must
still return a verdict: the draft refused or reported, the copilot not crashed."""
from __future__ import annotations

import ast
import json
import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

from include.zoomcamp import config
from include.zoomcamp.ai.copilot import sandbox, validation
from tests.conftest import REPO_ROOT
from tests.fixtures import copilot_drafts as drafts

pytestmark = pytest.mark.sandbox


@pytest.fixture
def outside(tmp_path) -> tuple[str, Path]:
    """A directory outside the sandbox that does not exist yet, and the marker a draft tries to write in it."""
    folder = tmp_path / "outside"
    return str(folder), folder / "marker"


class Listener:
    """A loopback TCP listener on the host, counting who reached it."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.setblocking(False)
        self.port = self.server.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                peer, _ = self.server.accept()
            except BlockingIOError:
                return count
            peer.close()
            count += 1


@pytest.fixture
def listener():
    opened = Listener()
    yield opened
    opened.server.close()


@pytest.fixture
def token():
    """A name for the processes a draft starts; any still running at the end are killed (by pid)."""
    name = f"copilot-draft-child-{uuid.uuid4().hex}"
    yield name
    for pid in _processes_named(name):
        os.kill(pid, signal.SIGKILL)


def _processes_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if name.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _validate_hostile(code: str) -> validation.Validation:
    assert validation.top_level_work(ast.parse(code)) == []  # the static rule lets it through
    return validation.validate(code)


def _imported_in_sandbox(result: validation.Validation) -> None:
    assert result.not_import_checked is None, result.not_import_checked
    assert not result.ok, "a draft that acts at import must be refused"


HOSTILE = {
    "alias of os.system": drafts.alias_of_os_system("/x", "/x/m"),
    "lambda with __import__": drafts.lambda_with_import("/x", "/x/m"),
    "exec through __builtins__": drafts.exec_through_builtins("/x", "/x/m"),
    "_socket connect": drafts.raw_socket_connect(9),
    "child process": drafts.child_process("/usr/bin/python3", "/x", "/x/m", 9, "t"),
    "libc system": drafts.libc_system("/usr/bin/python3", "/x", "/x/m", 9, "t"),
    "write into dags": drafts.write_into_dags("/x/dags/planted.py"),
    "read secrets": drafts.read_secrets("/x/passwords", "/x"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_every_hostile_draft_passes_the_static_checks(name):
    """So the validation imports each of them: what contains them is the sandbox."""
    code = HOSTILE[name]
    assert validation.top_level_work(ast.parse(code)) == [] and validation.ruff_air(code) == []


def test_the_sandbox_works_on_this_machine():
    assert sandbox.unavailable_reason() is None, "install the Debian package bubblewrap (see docs/ai.md)"


def test_an_alias_of_os_system_runs_nothing_outside(outside):
    folder, marker = outside
    result = _validate_hostile(drafts.alias_of_os_system(folder, str(marker)))
    assert not marker.exists() and not Path(folder).exists()
    _imported_in_sandbox(result)
    assert any("the file ran `os.system` while it was imported" in e for e in result.errors), result.errors


def test_a_lambda_with___import___runs_nothing_outside(outside):
    folder, marker = outside
    result = _validate_hostile(drafts.lambda_with_import(folder, str(marker)))
    assert not marker.exists() and not Path(folder).exists()
    _imported_in_sandbox(result)
    assert any("`os.system`" in e for e in result.errors), result.errors


def test_exec_through___builtins___writes_nothing_outside(outside):
    folder, marker = outside
    result = _validate_hostile(drafts.exec_through_builtins(folder, str(marker)))
    assert not marker.exists() and not Path(folder).exists()
    # the file was written, in the sandbox's own /tmp: the import went on to collect the DAG
    assert result.not_import_checked is None and result.dag_ids == ["hostile"]


def test_a_raw__socket_connect_reaches_no_listener(listener):
    result = _validate_hostile(drafts.raw_socket_connect(listener.port))
    assert listener.connections() == 0
    _imported_in_sandbox(result)
    assert any("`socket.connect`" in e for e in result.errors), result.errors


def test_a_child_process_neither_connects_nor_writes_outside_nor_outlives_the_validation(outside, listener, token):
    folder, marker = outside
    result = _validate_hostile(drafts.child_process(sys.executable, folder, str(marker),
                                                    listener.port, token))
    time.sleep(1)  # what a surviving child would do, it has had time to do
    assert _processes_named(token) == []
    assert listener.connections() == 0 and not marker.exists()
    _imported_in_sandbox(result)
    assert any("`subprocess.Popen`" in e for e in result.errors), result.errors


def test_a_child_started_through_libc_is_contained_by_the_sandbox_itself(outside, listener, token):
    """ctypes calls libc's system(): no audit event reports it, so only the sandbox stands in the way."""
    folder, marker = outside
    result = _validate_hostile(drafts.libc_system(sys.executable, folder, str(marker),
                                                  listener.port, token))
    time.sleep(1)
    assert _processes_named(token) == []
    assert listener.connections() == 0 and not marker.exists() and not Path(folder).exists()
    assert result.not_import_checked is None and result.dag_ids == ["hostile"]  # it ran, inside


def test_a_draft_cannot_plant_a_file_in_dags():
    target = REPO_ROOT / "dags" / f"zz_planted_{uuid.uuid4().hex}.py"
    try:
        result = _validate_hostile(drafts.write_into_dags(str(target)))
        assert not target.exists()
        _imported_in_sandbox(result)
        assert any("No such file or directory" in e or "Read-only file system" in e for e in result.errors)
    finally:
        target.unlink(missing_ok=True)


def test_secrets_stay_out_of_reach_and_out_of_the_errors(tmp_path, monkeypatch):
    secret = f"admin-password-{uuid.uuid4().hex}"
    password_file = tmp_path / "airflow" / "simple_auth_manager_passwords.json.generated"
    password_file.parent.mkdir()
    password_file.write_text(f'{{"admin": "{secret}"}}\n')
    monkeypatch.setenv("ZOOMCAMP_TEST_SECRET", secret)
    result = _validate_hostile(drafts.read_secrets(str(password_file), str(config.PROJECT_ROOT)))
    told = "\n".join(result.errors)
    assert secret not in told and "ZOOMCAMP_TEST_SECRET" not in told
    _imported_in_sandbox(result)
    assert "password file: FileNotFoundError" in told
    listed = told[told.index("project: [") + len("project: "):told.index("] | environment")] + "]"
    assert "'include'" in listed  # imported by the draft, so shown (read-only)
    assert not {"'dags'", "'plugins'", "'.local'", "'.env'", "'tests'"} & set(listed.strip("[]").split(", "))
    assert "GEMINI" not in told and "AIRFLOW_CONN" not in told


@pytest.mark.parametrize("bwrap", ["bwrap-not-installed-here", "/bin/false"])
def test_without_a_sandbox_the_draft_is_not_imported_and_says_so(bwrap, outside, monkeypatch, caplog):
    """No bwrap on PATH, or one that cannot create its namespaces (/bin/false stands for it)."""
    monkeypatch.setenv(config.COPILOT_BWRAP_ENV, bwrap)
    folder, marker = outside
    result = validation.validate(drafts.alias_of_os_system(folder, str(marker)))
    assert not marker.exists()
    assert result.ok and not result.import_checked and result.dag_ids == ["hostile"]
    assert result.checked_as.startswith("not import-checked (no sandbox to import it in: ")
    assert "The draft is NOT imported" in caplog.text
    # the static checks still run
    assert validation.validate(drafts.TOP_LEVEL_WORK).errors


def test_the_wall_clock_limit_kills_the_whole_tree(token):
    script = (f"import subprocess, sys, time\n"
              f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', {token!r}], "
              f"start_new_session=True)\n"
              f"time.sleep(600)\n")
    started = time.monotonic()
    done = sandbox.run_python(["-c", script], stdin=b"", limits=sandbox.Limits(wall_s=3))
    assert done.timed_out and time.monotonic() - started < 30
    assert _processes_named(token) == []


def test_cpu_and_memory_limits_stop_the_code():
    busy = sandbox.run_python(["-c", "while True: pass"], stdin=b"", limits=sandbox.Limits(cpu_s=1, wall_s=60))
    assert not busy.timed_out and busy.returncode != 0
    greedy = sandbox.run_python(["-c", "block = bytearray(2 << 30)"], stdin=b"",
                                limits=sandbox.Limits(address_space_bytes=1 << 30))
    assert greedy.returncode != 0 and b"MemoryError" in greedy.stderr


def test_the_sandbox_sees_no_environment_and_only_what_it_needs(monkeypatch):
    monkeypatch.setenv("ZOOMCAMP_TEST_SECRET", "x")
    script = ("import json, os, sys\n"
              "root = sys.stdin.read()\n"
              "json.dump({'env': sorted(os.environ), 'top': sorted(os.listdir('/')),\n"
              "           'project': sorted(os.listdir(root)) if os.path.isdir(root) else []}, sys.stdout)\n")
    done = sandbox.run_python(["-c", script], stdin=str(config.PROJECT_ROOT).encode(), env={"ONLY_THIS": "1"})
    seen = json.loads(done.stdout)
    assert seen["env"] == ["HOME", "LANG", "ONLY_THIS", "PATH", "PWD", "TMPDIR"]
    shown = sandbox.python_installation() | {Path(p) for p in sandbox.SYSTEM_PATHS if os.path.lexists(p)}
    assert set(seen["top"]) <= {"proc", "dev", "tmp"} | {p.parts[1] for p in shown}
    # of the project, only what the Python installation needs (a virtualenv kept in it)
    assert set(seen["project"]) <= {p.relative_to(config.PROJECT_ROOT).parts[0] for p in shown
                                    if p.is_relative_to(config.PROJECT_ROOT)}
