"""`python -m devstack {services|stop|run}`: the embedded services behind `make run` and `make test`."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from devstack import settings
from devstack.postgres import EmbeddedPostgres, free_port

STATE_FILE = "services.json"


def _state_path(root: Path) -> Path:
    return root / STATE_FILE


def start_services(root: Path) -> dict[str, str]:
    """Start (or reuse) the services under `root`; return the environment Airflow needs."""
    root.mkdir(parents=True, exist_ok=True)
    state_path = _state_path(root)
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    pg_port = state.get("pg_port")
    postgres = EmbeddedPostgres(root / "postgres", pg_port) if pg_port else None
    if postgres is None or not postgres.is_running():
        pg_port = free_port(int(os.environ.get("ZOOMCAMP_PG_PORT", 5432)))
        postgres = EmbeddedPostgres(root / "postgres", pg_port)
    postgres.start()
    api_port = int(os.environ.get("ZOOMCAMP_API_PORT", 8080))
    state_path.write_text(json.dumps({"pg_port": pg_port, "api_port": api_port}))
    return settings.airflow_environment(root, pg_port, api_port)


def stop_services(root: Path) -> None:
    state_path = _state_path(root)
    if not state_path.exists():
        return
    state = json.loads(state_path.read_text())
    EmbeddedPostgres(root / "postgres", state["pg_port"]).stop()


def run_airflow(root: Path) -> int:
    env = start_services(root)
    settings.write_env_file(env)
    full_env = {**os.environ, **env}
    airflow = str(Path(sys.executable).with_name("airflow"))
    print(f"PostgreSQL 18 (ny_taxi, user root/root) on 127.0.0.1:{env['ZOOMCAMP_PG_PORT']}")
    print(f"Airflow UI: {env['AIRFLOW__API__BASE_URL']}  (user admin; the password is printed below by "
          f"`airflow standalone` and kept in {env['AIRFLOW_HOME']}/simple_auth_manager_passwords.json.generated)")
    proc = subprocess.Popen([airflow, "standalone"], env=full_env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            return 130
    finally:
        stop_services(root)
        print("Stopped Airflow and the embedded services; data kept in", root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["services", "stop", "run"])
    args = parser.parse_args(argv)
    root = settings.data_dir()
    if args.command == "services":
        env = start_services(root)
        settings.write_env_file(env)
        print(f"Services up (PostgreSQL on 127.0.0.1:{env['ZOOMCAMP_PG_PORT']}); wrote {settings.ENV_FILE}")
        return 0
    if args.command == "stop":
        stop_services(root)
        return 0
    return run_airflow(root)


if __name__ == "__main__":
    sys.exit(main())
