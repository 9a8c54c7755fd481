"""The test session runs on the same embedded services as `make run`, in a throw-away data dir.

Airflow reads its configuration when first imported, so the services are started and the
environment set in `pytest_configure`, before any test module imports Airflow.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

_session_root: Path | None = None


def pytest_configure(config):
    global _session_root
    from devstack.__main__ import start_services

    _session_root = Path(tempfile.mkdtemp(prefix="zoomcamp-test-"))
    from devstack.__main__ import PORTS

    for _, env_name, _ in PORTS:  # any free ports: a running `make run` is left alone
        os.environ[env_name] = "0"
    env = start_services(_session_root)
    env["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
    os.environ.update(env)
    from devstack.airflow import prepare_metadata

    prepare_metadata(env)


def pytest_unconfigure(config):
    if _session_root is None:
        return
    from devstack.__main__ import stop_services

    if "airflow.settings" in sys.modules:
        sys.modules["airflow.settings"].dispose_orm()  # close pooled connections before the server stops
    stop_services(_session_root)
    shutil.rmtree(_session_root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_uri() -> str:
    from include.zoomcamp.config import POSTGRES_CONN_ID  # noqa: F401  (documents which connection this is)

    port = os.environ["ZOOMCAMP_PG_PORT"]
    return f"postgresql://root:root@127.0.0.1:{port}/ny_taxi"


@pytest.fixture
def pg(pg_uri):
    import psycopg

    with psycopg.connect(pg_uri, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(REPO_ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag


@pytest.fixture
def no_retries(monkeypatch):
    """Set every task of a DAG to fail on its first error, for this test only: the session's DAGs
    keep the retries they were parsed with (the DAG policy test checks them)."""

    def without_retries(dag):
        for t in dag.tasks:
            monkeypatch.setattr(t, "retries", 0)
        return dag

    return without_retries


def run_dag(dag, **kwargs):
    """Run a DAG for real with `dag.test()` (tasks execute, XComs and states are stored)."""
    return dag.test(**kwargs)


def logical_dates(dag) -> list:
    """Every logical date between the DAG's start and end dates: what a backfill of the whole range creates."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    restriction = TimeRestriction(dag.start_date, dag.end_date, catchup=True)
    dates, last = [], None
    while (info := dag.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)):
        dates.append(info.logical_date)
        last = DataInterval(info.data_interval.start, info.data_interval.end)
    return dates


@pytest.fixture(scope="module")
def release_site(tmp_path_factory):
    """A loopback release site: (directory, base URL); write files with fixtures.taxi.write_taxi_gz."""
    from tests.fixtures.taxi import FileServer

    root = tmp_path_factory.mktemp("taxi-site")
    with FileServer(root) as server:
        yield root, server.url


@pytest.fixture(scope="module")
def airflow_stack_env() -> dict[str, str]:
    """Extra environment for this module's `airflow_stack` (e.g. AIRFLOW_VAR_* pointing at a loopback
    server); override it in a test module. None by default."""
    return {}


@pytest.fixture(scope="module")
def airflow_stack(release_site, airflow_stack_env):
    """A real Airflow (scheduler, dag-processor, triggerer, api-server) for this module's tests, its
    taxi Variable pointing at `release_site`, plus `airflow_stack_env`. Module-scoped: the dag.test()
    runs of other modules must not meet a scheduler."""
    from tests.fixtures.airflow_stack import AirflowStack

    env = {**os.environ, "AIRFLOW_VAR_TAXI_DATA_BASE_URL": release_site[1], **airflow_stack_env}
    with AirflowStack(env, _session_root / "airflow-standalone.log") as stack:
        yield stack


@pytest.fixture(scope="module")
def gemini_standin():
    """A local stand-in of the Gemini REST API (tests/fixtures/gemini_standin.py) for this module."""
    from tests.fixtures.gemini_standin import GeminiStandIn

    server = GeminiStandIn().start()
    yield server
    server.stop()
