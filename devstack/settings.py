"""Where the local services keep their data and which environment they hand to Airflow."""
from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from devstack import private
from include.zoomcamp import config

REPO_ROOT = Path(__file__).resolve().parent.parent
# ZOOMCAMP_ENV_FILE: where `make run`/`make services` write it (tests point it at their own directory).
# Not `.env`: the Astro CLI hands `.env` to its containers and Docker Compose reads it for its variables.
ENV_FILE = Path(os.environ.get("ZOOMCAMP_ENV_FILE", REPO_ROOT / "devstack.env"))
API_HOST = "127.0.0.1"
EXPLAINER_USER = "ai_explainer"
# The simple auth manager's password file (its default name, in AIRFLOW_HOME).
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
PASSWORDS_FILE_ENV = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"  # elsewhere than AIRFLOW_HOME (compose)


def data_dir() -> Path:
    return config.data_dir()


def postgres_connection(port: int, host: str = "127.0.0.1") -> dict:
    # Same credentials and database as the course's compose file (root/root, ny_taxi).
    return {"conn_type": "postgres", "host": host, "port": port,
            "login": "root", "password": "root", "schema": "ny_taxi"}


def google_connection() -> dict:
    # Anonymous credentials: the emulators need none, and no key is ever written to disk.
    return {"conn_type": "google_cloud_platform",
            "extra": {"is_anonymous": True, "project": config.GCP_DEFAULTS[config.GCP_PROJECT_ID_VAR]}}


def common_airflow_settings() -> dict[str, str]:
    """What Airflow is told alike by `make run`, Docker Compose and the Astro CLI (devstack/deployment.py)."""
    return {
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Manual DAGs run as soon as they are triggered; scheduled ones start paused by themselves.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # Tasks at once (the LocalExecutor forks this many workers up front; Airflow's default is 32):
        # enough for a laptop, where the taxi-load pool bounds the heavy tasks anyway.
        "AIRFLOW__CORE__PARALLELISM": "8",
        # A task's worker notices the task process's exit within a second instead of up to 5 s later (its
        # supervisor waits this long in select() once the task has closed its sockets): the executor slot is
        # free sooner, and a deferred task's report reaches the scheduler before the task can be resumed,
        # which Airflow 3.3.2 would otherwise take for a change from outside and fail the try
        # (apache/airflow#67287). Heartbeats come as often; 15 missed in a row (Airflow: 3 of 5 s) end a task.
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AIRFLOW__WORKERS__MAX_FAILED_HEARTBEATS": "15",
        # admin (the UI's user) plus the AI failure explainer's own user, allowed to write task notes.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{EXPLAINER_USER}:user",
    }


def airflow_environment(root: Path, ports: Mapping[str, int], metadata_db_uri: str, gcs_url: str = "",
                        bigquery_url: str = "", pubsub_host: str = "",
                        gcp_mode: str = config.GCP_EMULATORS) -> dict[str, str]:
    """The variables Airflow reads (AIRFLOW__SECTION__KEY, AIRFLOW_CONN_*), for the services under `root` on
    `ports` (devstack.__main__.PORTS' keys); `metadata_db_uri`: Airflow's metadata database (SQLAlchemy URL).

    No AIRFLOW_VAR_*: an environment Variable would hide the value a user sets in the UI; every
    Variable's default lives in the code that reads it. (Real GCP mode adds the course's four values
    from zoomcamp.env on purpose: devstack/gcp.py.) The emulators' variables only in emulator mode.
    """
    pg_port, api_port = ports["pg_port"], ports["api_port"]
    env = {
        "AIRFLOW_HOME": str(root / "airflow"),
        "PYTHONPATH": str(REPO_ROOT),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        **common_airflow_settings(),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db_uri,
        "AIRFLOW__API__HOST": API_HOST,
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://{API_HOST}:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{API_HOST}:{api_port}/execution/",
        # The log servers (devstack.log_server) listen on API_HOST only, at this stack's own ports; the
        # api-server finds them by the host name the components and tasks record: API_HOST too.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["worker_log_port"]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["trigger_log_port"]),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "devstack.settings.loopback_hostname",
        "AIRFLOW_CONN_" + config.POSTGRES_CONN_ID.upper(): json.dumps(postgres_connection(pg_port)),
        config.GCP_MODE_ENV: gcp_mode,
        config.DATA_DIR_ENV: str(root),
        # Git DAG bundles' clones (make run-git) with the rest of this stack's data, not in the shared /tmp.
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(root / "airflow" / "dag_bundles"),
        "ZOOMCAMP_PG_PORT": str(pg_port),
    }
    if gcp_mode == config.GCP_EMULATORS:
        env.update(emulator_environment(gcs_url, bigquery_url, pubsub_host))
    return env


def emulator_environment(gcs_url: str, bigquery_url: str, pubsub_host: str = "") -> dict[str, str]:
    env = {
        "AIRFLOW_CONN_" + config.GCP_CONN_ID.upper(): json.dumps(google_connection()),
        # Read by Google's own clients (storage, bigquery; pubsub below), so any tool reaches the emulators.
        # GCP_* Variables are deliberately not set here: environment Variables would hide the
        # values 06_gcp_kv stores; the DAGs' defaults already name the emulators' project.
        "STORAGE_EMULATOR_HOST": gcs_url,
        # gcsfs (ObjectStoragePath gs://) otherwise asks the Storage Control gRPC API, which ignores
        # STORAGE_EMULATOR_HOST, for each bucket's layout: ~1 min of retries per file opened, offline.
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "BIGQUERY_EMULATOR_HOST": bigquery_url,
    }
    if pubsub_host:
        # host:port without a scheme, as Google's Pub/Sub clients (and the triggerer's hook) expect.
        env["PUBSUB_EMULATOR_HOST"] = pubsub_host
    return env


def celery_environment(broker_url: str, metadata_db_uri: str, workers: int, storage_url: str) -> dict[str, str]:
    """The CeleryExecutor on Redis (`broker_url`), task states kept in the metadata database, `workers` workers
    (devstack.workers), and the files tasks keep for others in a bucket every worker reaches (`storage_url`)."""
    from devstack import workers as celery_workers

    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_db_uri,
        celery_workers.WORKERS_ENV: str(workers),
        config.STORAGE_URL_ENV: storage_url,
    }


def loopback_hostname() -> str:
    """`[core] hostname_callable`: where the api-server reaches a component's log server."""
    return API_HOST


def gemini_placeholder_connection() -> dict:
    # No key on purpose: the AI DAGs fail naming the connection until the learner sets one (docs/ai.md).
    return {"conn_type": config.GEMINI_CONN_TYPE, "password": config.GEMINI_KEY_PLACEHOLDER,
            "extra": {"model": f"google:{config.GEMINI_CHAT_MODEL}", "embedding_model": config.GEMINI_EMBEDDING_MODEL}}


def airflow_api_connection(base_url: str, password: str) -> dict:
    # How the AI failure explainer writes a task's note: Airflow's REST API as its own user.
    return {"conn_type": "http", "host": base_url, "login": EXPLAINER_USER, "password": password}


def write_env_file(env: dict[str, str], path: Path = ENV_FILE) -> None:
    lines = ["# Written by `make services` / `make run`; load with: set -a; . ./devstack.env; set +a"]
    lines += [f"{key}={shlex.quote(value)}" for key, value in env.items()]
    private.write_private(path, "\n".join(lines) + "\n")  # connection URIs with their passwords
