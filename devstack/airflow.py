"""Airflow itself on the embedded services: metadata set-up and `airflow standalone`.

Used by `make run`, and by the tests and benchmarks that need a real scheduler, triggerer and
api-server (backfills, asset watchers, the UI).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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
    """Migrate the metadata database and create the pools the DAGs use (both idempotent)."""
    airflow_cli(env, "db", "migrate")
    airflow_cli(env, "pools", "set", config.TAXI_LOAD_POOL, str(config.taxi_load_slots()), config.TAXI_LOAD_POOL_DOC)


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
