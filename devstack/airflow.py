"""Airflow itself on the embedded services: metadata set-up and its components (devstack.standalone).

Used by `make run`, and by the tests and benchmarks that need a real scheduler, triggerer and
api-server (backfills, asset watchers, the UI).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from devstack import private, procs, settings
from include.zoomcamp import config


def airflow_command() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def process_environment(env: dict[str, str]) -> dict[str, str]:
    """The current environment plus `env`, with this venv's `airflow` first on PATH
    (Airflow's components start others as `airflow ...` commands)."""
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, **env, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}


def airflow_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([airflow_command(), *args], env=process_environment(env), check=check,
                          capture_output=True, text=True)


def airflow_cli_batch(env: dict[str, str], *commands: list[str]) -> subprocess.CompletedProcess:
    """Several `airflow` commands, one after the other, in one process (devstack.airflow_batch)."""
    return subprocess.run([sys.executable, "-m", "devstack.airflow_batch", json.dumps(commands)],
                          env=process_environment(env), check=True, capture_output=True, text=True)


def prepare_metadata(env: dict[str, str], in_this_process: bool = False) -> None:
    """Migrate the metadata database and create the pools and connections the DAGs use (all idempotent).

    The connections live in the metadata database rather than AIRFLOW_CONN_* variables, so a key set in the
    UI is not hidden: `gemini_default` (a placeholder without key) is kept when it exists; `airflow_api` (the
    AI failure explainer's user) is replaced at every start, so the explainer sends its password to this
    start's API server, whatever port that has. `in_this_process`: the commands run here rather than in an
    `airflow` process, for a process that has Airflow imported with `env` as its configuration already."""
    api = settings.airflow_api_connection(env["AIRFLOW__API__BASE_URL"], explainer_password(env))
    with tempfile.TemporaryDirectory() as tmp:  # mode 0700
        kept, replaced = Path(tmp) / "kept.json", Path(tmp) / "replaced.json"
        kept.write_text(json.dumps({config.GEMINI_CONN_ID: settings.gemini_placeholder_connection()}))
        replaced.write_text(json.dumps({config.AIRFLOW_API_CONN_ID: api}))
        commands = [["db", "migrate"],
                    *(["pools", "set", name, str(slots), doc] for name, slots, doc in config.pools()),
                    ["connections", "import", str(kept)],
                    ["connections", "import", "--overwrite", str(replaced)]]
        if in_this_process:
            from devstack import airflow_batch

            airflow_batch.main(commands)
        else:
            airflow_cli_batch(env, *commands)


def explainer_password(env: dict[str, str]) -> str:
    """The explainer user's password, kept in the simple auth manager's password file (which adds the
    admin's on first start and keeps this one). The file is 0600: the api-server rewrites it in place."""
    path = Path(env.get(settings.PASSWORDS_FILE_ENV) or Path(env["AIRFLOW_HOME"]) / settings.PASSWORDS_FILE)
    passwords = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else {}
    if settings.EXPLAINER_USER not in passwords:
        passwords[settings.EXPLAINER_USER] = secrets.token_urlsafe(16)
        private.write_private(path, json.dumps(passwords) + "\n")
    private.make_private(path)
    return passwords[settings.EXPLAINER_USER]


def start_standalone(env: dict[str, str], log_path: Path | None = None) -> subprocess.Popen:
    """Airflow's components (devstack.standalone: api-server, scheduler, dag-processor, triggerer, log server)
    in their own session and process group."""
    out = open(log_path, "ab") if log_path else None
    return subprocess.Popen([sys.executable, "-m", "devstack.standalone"], env=process_environment(env),
                            start_new_session=True, stdout=out, stderr=subprocess.STDOUT if out else None)


def wait_until_healthy(base_url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Wait for the api-server and the scheduler to report healthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Airflow's components exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/api/v2/monitor/health", timeout=5) as response:
                if json.load(response).get("scheduler", {}).get("status") == "healthy":
                    return
        except (OSError, ValueError):
            pass
        time.sleep(1)
    raise TimeoutError(f"Airflow at {base_url} was not healthy within {timeout:.0f} s")


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    """Stop Airflow's components: SIGINT to the process group, once (devstack.standalone waits for the
    components, which have it too, then stops the api-server and the log server), then SIGKILL to its whole
    session after `timeout`."""
    if proc.poll() is not None:
        return proc.returncode
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in {*procs.session_members(proc.pid), proc.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return proc.wait()
