"""Docker Compose's one-shot `airflow-init` (docker-compose.yaml): what `make run` does before Airflow starts.

`python -m devstack.container init`:
1. generates, once, the secrets every Airflow container must share — the Fernet key, the API's secret key,
   the JWT secret, the `airflow` role's password — into the `zoomcamp-secrets` volume (ZOOMCAMP_SECRETS_DIR,
   files 0600, never in the repository or the image); the other containers read them through Airflow's
   `..._CMD` settings (`cat <file>`);
2. gives Airflow's metadata database its own role in the course's Postgres (`pgdatabase`: root/root owns
   ny_taxi, as in the course), as devstack does for the embedded one (devstack/postgres.py);
3. migrates the metadata database and creates the pool and the connections gemini_default (placeholder)
   and airflow_api (the explainer's user, at the api-server's service name), as `make run` does
   (devstack/airflow.py `prepare_metadata`).

Run again on every `docker compose up`: each step is idempotent.
"""
from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

from devstack import airflow, deployment, postgres, private

SECRETS_DIR_ENV = "ZOOMCAMP_SECRETS_DIR"
SQL_ALCHEMY_CONN_FILE = "sql_alchemy_conn"


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# file -> how it is generated; the compose file's x-airflow-secrets read them with `cat`
GENERATED = {
    "fernet_key": _fernet_key,
    "api_secret_key": lambda: secrets.token_urlsafe(32),
    "jwt_secret": lambda: secrets.token_urlsafe(32),
    "airflow_db_password": lambda: secrets.token_urlsafe(24),
}


def secrets_dir() -> Path:
    return Path(os.environ.get(SECRETS_DIR_ENV, "/run/zoomcamp"))


def ensure_secrets(folder: Path) -> dict[str, str]:
    """The shared secrets, generated when missing (a file is never replaced); returns them by file name."""
    found = {}
    for name, generate in GENERATED.items():
        path = folder / name
        if not path.exists():
            private.write_private(path, generate())
        found[name] = path.read_text().strip()
    metadata_uri = (f"postgresql+psycopg://{postgres.METADATA_ROLE}:{found['airflow_db_password']}@"
                    f"{deployment.POSTGRES_SERVICE}:{deployment.CONTAINER_POSTGRES_PORT}/{postgres.METADATA_DATABASE}")
    private.write_private(folder / SQL_ALCHEMY_CONN_FILE, metadata_uri)
    found[SQL_ALCHEMY_CONN_FILE] = metadata_uri
    return found


def superuser_uri(database: str) -> str:
    return (f"postgresql://{postgres.SUPERUSER}:{postgres.PASSWORD}@{deployment.POSTGRES_SERVICE}:"
            f"{deployment.CONTAINER_POSTGRES_PORT}/{database}")


def wait_for_postgres(timeout: float = 120) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(superuser_uri("postgres"), connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def hand_over(folder: Path, airflow_home: Path) -> None:
    """Run as root (to write the fresh volume), give the secrets to the user owning Airflow's home: the user
    every other Airflow container runs as."""
    if os.geteuid() != 0:
        return
    owner = airflow_home.stat()
    for path in (folder, *folder.iterdir()):
        os.chown(path, owner.st_uid, owner.st_gid)


def init() -> None:
    found = ensure_secrets(secrets_dir())
    wait_for_postgres()
    postgres.ensure_databases(superuser_uri, found["airflow_db_password"])
    env = {**os.environ,
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": found[SQL_ALCHEMY_CONN_FILE],
           "AIRFLOW__CORE__FERNET_KEY": found["fernet_key"],
           "AIRFLOW__API__SECRET_KEY": found["api_secret_key"],
           "AIRFLOW__API_AUTH__JWT_SECRET": found["jwt_secret"],
           # airflow_api names the api-server as the other containers reach it
           "AIRFLOW__API__BASE_URL": f"http://{deployment.API_SERVICE}:{deployment.API_PORT}"}
    airflow.prepare_metadata(env)
    hand_over(secrets_dir(), Path(os.environ.get("AIRFLOW_HOME", "/usr/local/airflow")))
    print("Airflow's metadata database migrated; pool and connections created; secrets in", secrets_dir())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["init"]:
        print("usage: python -m devstack.container init", file=sys.stderr)
        return 2
    init()
    return 0


if __name__ == "__main__":
    sys.exit(main())
