"""What devstack keeps from other users and other services: private files, the explainer's API connection,
the metadata database's own role, log servers on loopback, emulator pid files that name only their emulator."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from devstack import airflow, postgres, private, procs, settings
from devstack.emulators import PubSubEmulator
from devstack.postgres import EmbeddedPostgres, free_port
from include.zoomcamp import config
from tests.conftest import REPO_ROOT
from tests.fixtures.permissions import assert_private_data_dir, mode

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


# -- files holding secrets ---------------------------------------------------------------------------
def test_the_session_data_dir_and_its_secrets_are_private(services):
    root = Path(os.environ[config.DATA_DIR_ENV])
    assert_private_data_dir(root)
    assert mode(Path(os.environ["AIRFLOW_HOME"]) / settings.PASSWORDS_FILE) == 0o600
    assert mode(root / "postgres" / postgres.METADATA_PASSWORD_FILE) == 0o600


def test_an_existing_readable_data_dir_is_narrowed(tmp_path):
    root = tmp_path / "data"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    private.private_dir(root)
    assert mode(root) == 0o700


def test_the_env_file_is_0600_even_when_it_was_readable(tmp_path):
    path = tmp_path / ".env"
    path.write_text("OLD=1\n")
    os.chmod(path, 0o644)
    settings.write_env_file({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg://airflow:pw@h/airflow"}, path)
    assert mode(path) == 0o600
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg://airflow:pw@h/airflow" in path.read_text()
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_password_file_stays_0600_when_the_api_server_adds_its_users(tmp_path):
    """devstack creates it 0600; Airflow's simple auth manager rewrites it in place (adding the users it
    lacks) at the api-server's start, which keeps the mode. A readable file from elsewhere is narrowed."""
    home = tmp_path / "airflow"
    password = airflow.explainer_password({"AIRFLOW_HOME": str(home)})
    path = home / settings.PASSWORDS_FILE
    assert mode(path) == 0o600
    env = {**os.environ, "AIRFLOW_HOME": str(home),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{settings.EXPLAINER_USER}:user"}
    subprocess.run([sys.executable, "-c", "from airflow.api_fastapi.auth.managers.simple.simple_auth_manager "
                    "import SimpleAuthManager; SimpleAuthManager().init()"], env=env, check=True, capture_output=True)
    passwords = json.loads(path.read_text())
    assert passwords[settings.EXPLAINER_USER] == password and passwords["admin"]
    assert mode(path) == 0o600

    os.chmod(path, 0o644)
    assert airflow.explainer_password({"AIRFLOW_HOME": str(home)}) == password
    assert mode(path) == 0o600


# -- the explainer's connection follows the API server -------------------------------------------------
@pytest.fixture
def metadata_copy(services):
    """A copy of the session's metadata database, migrated, with its connections: (its URI, an ORM session
    factory on it). A start's connections are written there, never into the database the session reads."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    uri = services.metadata_database("devstack_security_start")
    engine = create_engine(uri)
    try:
        yield uri, sessionmaker(bind=engine)
    finally:
        engine.dispose()


def _stored_connection(sessions, conn_id: str):
    """The connection as stored in the metadata database (not an AIRFLOW_CONN_* variable)."""
    from airflow.models.connection import Connection
    from sqlalchemy import select

    with sessions() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        return None if conn is None else (conn.host, conn.get_password())


def _set_gemini_key(sessions, key: str) -> None:
    from airflow.models.connection import Connection
    from sqlalchemy import delete

    with sessions() as session, session.begin():
        session.execute(delete(Connection).where(Connection.conn_id == config.GEMINI_CONN_ID))
        session.add(Connection(conn_id=config.GEMINI_CONN_ID, conn_type=config.GEMINI_CONN_TYPE, password=key))


def test_airflow_api_follows_the_api_servers_url_at_each_start(metadata_copy):
    """A start on another API port replaces airflow_api (so the explainer's password goes to this stack's API
    server, not whatever listens on the old port); a Gemini key set by the user is kept."""
    uri, sessions = metadata_copy
    assert _stored_connection(sessions, config.AIRFLOW_API_CONN_ID)[0] == os.environ["AIRFLOW__API__BASE_URL"]
    assert _stored_connection(sessions, config.GEMINI_CONN_ID)[1] == config.GEMINI_KEY_PLACEHOLDER
    _set_gemini_key(sessions, "the-users-own-key")
    airflow.prepare_metadata({**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": uri,
                              "AIRFLOW__API__BASE_URL": "http://127.0.0.1:18080"})
    assert _stored_connection(sessions, config.AIRFLOW_API_CONN_ID)[0] == "http://127.0.0.1:18080"
    assert _stored_connection(sessions, config.GEMINI_CONN_ID)[1] == "the-users-own-key"


# -- the metadata database has its own role -----------------------------------------------------------
def _metadata_uri() -> str:
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg://", "postgresql://")


def test_the_course_login_reaches_ny_taxi_and_airflow_uses_its_own_role(pg):
    assert pg.execute("SELECT current_user, current_database()").fetchone() == ("root", "ny_taxi")
    assert _metadata_uri().startswith(f"postgresql://{postgres.METADATA_ROLE}:")
    with psycopg.connect(_metadata_uri()) as conn:
        user, superuser, createdb, createrole = conn.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert (user, superuser, createdb, createrole) == (postgres.METADATA_ROLE, False, False, False)
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
        assert owner.fetchone()[0] == postgres.METADATA_ROLE
        others = conn.execute("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE n.nspname = 'public' AND c.relowner <> (SELECT oid FROM pg_roles WHERE "
                              "rolname = current_user)").fetchall()
        assert others == []
        assert conn.execute("SELECT count(*) FROM dag").fetchone()[0] >= 0  # Airflow's migrated tables, its own
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'true'")  # what only a superuser may do


def test_a_metadata_database_root_owns_is_handed_over_at_start(tmp_path):
    """A data dir whose `airflow` database and objects root owns (Airflow migrated as root) keeps working:
    the start hands everything to the `airflow` role, and a second start changes nothing."""
    cluster = EmbeddedPostgres(tmp_path / "data" / "postgres", free_port(0))
    private.private_dir(cluster.data_dir.parent)
    cluster.start()
    try:
        with psycopg.connect(cluster.uri("postgres"), autocommit=True) as conn:
            conn.execute("ALTER DATABASE airflow OWNER TO root")
        with psycopg.connect(cluster.uri("airflow"), autocommit=True) as conn:
            conn.execute("""
                CREATE TYPE run_state AS ENUM ('queued', 'running');
                CREATE TABLE dag_run (id serial PRIMARY KEY, state run_state, n bigint GENERATED ALWAYS AS IDENTITY);
                CREATE SEQUENCE loose_seq;
                CREATE VIEW running AS SELECT id FROM dag_run WHERE state = 'running';
                CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1';
            """)
            assert conn.execute(postgres._HAND_OVER, {"role": postgres.METADATA_ROLE}).fetchall()
        cluster.stop()
        cluster.start()  # hands over
        with psycopg.connect(cluster.metadata_uri(), autocommit=True) as conn:
            # the role may now change its tables (ALTER needs ownership), write and use the rest
            conn.execute("ALTER TABLE dag_run ADD COLUMN note text")
            conn.execute("INSERT INTO dag_run (state) VALUES ('running')")
            assert conn.execute("SELECT count(*), one(), nextval('loose_seq') FROM running").fetchone() == (1, 1, 1)
            assert conn.execute(postgres._HAND_OVER, {"role": postgres.METADATA_ROLE}).fetchall() == []
            owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'airflow'")
            assert owner.fetchone()[0] == postgres.METADATA_ROLE
        cluster._ensure_databases()  # idempotent: nothing left to hand over, nothing fails
        with psycopg.connect(cluster.uri("ny_taxi")) as conn:  # the course's login, unchanged
            assert conn.execute("SELECT current_user").fetchone()[0] == "root"
    finally:
        cluster.stop()


# -- the log servers listen on loopback only ---------------------------------------------------------
def test_the_log_server_serves_airflows_logs_on_loopback_only_at_the_chosen_ports():
    from airflow.utils.log.file_task_handler import _fetch_logs_from_service

    from tests.fixtures.sockets import listening_addresses

    worker_port, trigger_port = free_port(0), free_port(0)
    env = {**os.environ, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_port),
           "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_port)}
    relative = f"dag_id=log_server_test/run_id=r{os.getpid()}/task_id=t/attempt=1.log"
    log_file = Path(os.environ["AIRFLOW_HOME"]) / "logs" / relative
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text("served from the task's log file\n")
    server = subprocess.Popen([sys.executable, "-m", "devstack.log_server"], env=env, cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (listening_addresses(worker_port) and listening_addresses(trigger_port)):
            assert server.poll() is None, server.stdout.read().decode()
            assert time.monotonic() < deadline, "the log server did not listen within 60 s"
            time.sleep(0.2)
        assert listening_addresses(worker_port) == {"127.0.0.1"}
        assert listening_addresses(trigger_port) == {"127.0.0.1"}
        for port in (worker_port, trigger_port):  # as the api-server fetches a running task's log
            response = _fetch_logs_from_service(f"http://127.0.0.1:{port}/log/{relative}", relative)
            assert (response.status_code, response.text) == (200, "served from the task's log file\n")
        import requests

        assert requests.get(f"http://127.0.0.1:{worker_port}/log/{relative}", timeout=10).status_code == 403
    finally:
        server.terminate()
        server.wait(timeout=30)
        log_file.unlink()


def test_each_stack_gets_its_own_log_server_ports():
    from devstack.__main__ import PORTS

    keys = {key for key, _, _ in PORTS}
    assert {"worker_log_port", "trigger_log_port"} <= keys
    env = os.environ
    ports = {int(env[f"AIRFLOW__LOGGING__{kind}_LOG_SERVER_PORT"]) for kind in ("WORKER", "TRIGGER")}
    assert len(ports) == 2 and not ports & {8793, 8794}  # the session chose free ports (ZOOMCAMP_*_PORT=0)
    assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "devstack.settings.loopback_hostname"
    from airflow.utils.net import get_hostname

    assert get_hostname() == "127.0.0.1"  # what tasks record and the api-server fetches their logs from


# -- emulator pid files --------------------------------------------------------------------------------
def test_an_emulator_pid_file_naming_another_process_is_left_alone(tmp_path):
    """A pid file whose pid now belongs to another process (a reused pid): stop leaves that process alone,
    start starts the emulator."""
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    emulator = PubSubEmulator("pubsub-pidtest", tmp_path / "pubsub", free_port(0))
    try:
        for content in (str(other.pid),  # a bare pid, without the process's identity
                        json.dumps({"pid": other.pid, "started": procs.start_time(other.pid), "boot_id": "before"}),
                        json.dumps({"pid": other.pid, "started": "1", "boot_id": procs.boot_id()})):
            emulator.pid_file.parent.mkdir(parents=True, exist_ok=True)
            emulator.pid_file.write_text(content)
            assert not emulator.is_running()
            emulator.stop()
            assert other.poll() is None and not emulator.pid_file.exists()
        emulator.pid_file.write_text(str(other.pid))
        emulator.start()
        assert emulator.is_running() and emulator.running_pid() != other.pid
        emulator.stop()
        assert not emulator.is_running() and other.poll() is None
    finally:
        emulator.stop()
        other.kill()
        other.wait()


# -- files the DAGs write ------------------------------------------------------------------------------
@pytest.mark.parametrize("dag_id, task_id, folder", [("03_getting_started_data_pipeline", "query", "results"),
                                                     ("ai_copilot", "draft_dag", "copilot-drafts")])
def test_files_the_dags_write_default_under_the_data_dir(dagbag, dag_id, task_id, folder):
    """Not a shared /tmp path another user could read, or create first."""
    args = str(dagbag.get_dag(dag_id).get_task(task_id).op_args)
    assert f"'{(config.data_dir() / folder).as_uri()}'" in args and "zoomcamp-results" not in args
