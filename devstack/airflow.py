"""Airflow itself on the embedded services: metadata set-up and `airflow standalone`.

Used by `make run`, and by the tests and benchmarks that need a real scheduler, triggerer and
api-server (backfills, asset watchers, the UI).
"""
from __future__ import annotations

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

from devstack import settings
from include.zoomcamp import config


def airflow_command() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def process_environment(env: dict[str, str]) -> dict[str, str]:
    """The current environment plus `env`, with this venv's `airflow` first on PATH
    (`airflow standalone` starts its components as `airflow ...` commands)."""
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, **env, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}


def airflow_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([airflow_command(), *args], env=process_environment(env), check=check,
                          capture_output=True, text=True)


def prepare_metadata(env: dict[str, str]) -> None:
    """Migrate the metadata database and create the pools and connections the DAGs use (all idempotent)."""
    airflow_cli(env, "db", "migrate")
    airflow_cli(env, "pools", "set", config.TAXI_LOAD_POOL, str(config.taxi_load_slots()), config.TAXI_LOAD_POOL_DOC)
    airflow_cli(env, "pools", "set", config.YELLOW_CAB_RAW_LOAD_POOL, str(config.YELLOW_CAB_RAW_LOAD_SLOTS),
                config.YELLOW_CAB_RAW_LOAD_POOL_DOC)
    add_ai_connections(env)


def add_ai_connections(env: dict[str, str]) -> None:
    """`gemini_default` (a placeholder without key) and `airflow_api` (the explainer's user), in the metadata
    database rather than AIRFLOW_CONN_* variables, so a key set in the UI is not hidden; existing ones are kept."""
    connections = {
        config.GEMINI_CONN_ID: settings.gemini_placeholder_connection(),
        config.AIRFLOW_API_CONN_ID: settings.airflow_api_connection(env["AIRFLOW__API__BASE_URL"],
                                                                    explainer_password(env)),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(connections, file)
        file.flush()
        airflow_cli(env, "connections", "import", file.name)


def explainer_password(env: dict[str, str]) -> str:
    """The explainer user's password, kept in the simple auth manager's password file (which adds the
    admin's on first start and keeps this one)."""
    path = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    passwords = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else {}
    if settings.EXPLAINER_USER not in passwords:
        passwords[settings.EXPLAINER_USER] = secrets.token_urlsafe(16)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords) + "\n")
    return passwords[settings.EXPLAINER_USER]


def start_standalone(env: dict[str, str], log_path: Path | None = None) -> subprocess.Popen:
    """`airflow standalone` (api-server, scheduler, dag-processor, triggerer) in its own process group."""
    out = open(log_path, "ab") if log_path else None
    return subprocess.Popen([airflow_command(), "standalone"], env=process_environment(env), start_new_session=True,
                            stdout=out, stderr=subprocess.STDOUT if out else None)


def wait_until_healthy(base_url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Wait for the api-server and the scheduler to report healthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"airflow standalone exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/api/v2/monitor/health", timeout=5) as response:
                if json.load(response).get("scheduler", {}).get("status") == "healthy":
                    return
        except (OSError, ValueError):
            pass
        time.sleep(1)
    raise TimeoutError(f"Airflow at {base_url} was not healthy within {timeout:.0f} s")


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    """Stop the whole process group (SIGINT, then SIGKILL after `timeout`)."""
    if proc.poll() is not None:
        return proc.returncode
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()
