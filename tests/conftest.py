"""The test session runs on the same embedded services as `make run`, in a throw-away data dir.

Airflow reads its configuration when first imported, so the environment is set in `pytest_configure`,
before any test module imports Airflow; the services themselves start on first use
(tests/fixtures/services.py): a test that needs them asks for `services` (or a fixture built on it,
such as `pg` or `airflow_stack`), and `run_dag` starts them too.

Tiers (`make test-fast` runs the tests with none of these markers; `make test` runs all):
`stack` — a real Airflow (scheduler, triggerer, api-server), given to every test using `airflow_stack`
(or the Git bundles' own `git_stack`);
`browser` — Chromium; `jdk` — the local JDK and Maven; `virtualenv` — builds a Python virtualenv;
`deploy` — the Docker Compose and Astro files checked with their own tools and a clean virtualenv;
`pubsub_google` — Google's own Pub/Sub emulator (a JVM), given to every test using `google_pubsub_emulator`
(tests parametrized over both emulators carry it on their `google` parameter).
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

# marker -> the fixtures that give a test that marker (the others are set on the tests themselves)
TIER_MARKERS = {"stack": ("airflow_stack", "git_stack", "celery_stack"), "browser": ("browser",), "jdk": (),
                "virtualenv": (), "deploy": (), "pubsub_google": ("google_pubsub_emulator",)}
# Markers of tests that need a system tool, whatever their tier: `sandbox` — bubblewrap (fast tier);
# `celery` — Redis and bubblewrap (with `stack`).
TOOL_MARKERS = ("sandbox", "celery")
_session = None  # tests.fixtures.services.SessionServices


def pytest_configure(config):
    global _session
    from devstack.__main__ import PORTS
    from tests.fixtures.services import SessionServices

    for _, env_name, _ in PORTS:  # any free ports for devstack runs of the tests: a `make run` is left alone
        os.environ[env_name] = "0"
    _session = SessionServices(Path(tempfile.mkdtemp(prefix="zoomcamp-test-")))
    os.environ.update(_session.env)


def pytest_collection_modifyitems(config, items):
    """Tests using a tier's fixture get its marker; a selected test needing a missing system tool stops
    the session before any test runs, naming the command that installs it."""
    from devstack import system_packages

    for item in items:
        for marker, fixtures in TIER_MARKERS.items():
            if set(fixtures) & set(item.fixturenames):
                item.add_marker(marker)
    needed = {marker for item in items for marker in (*TIER_MARKERS, *TOOL_MARKERS) if item.get_closest_marker(marker)}
    missing = system_packages.missing(system_packages.for_markers(needed))
    if missing:
        pytest.exit(system_packages.instructions(missing), returncode=4)


def pytest_unconfigure(config):
    if _session is None:
        return
    if "airflow.settings" in sys.modules:
        sys.modules["airflow.settings"].dispose_orm()  # close pooled connections before the server stops
    _session.stop()
    shutil.rmtree(_session.root, ignore_errors=True)


@pytest.fixture(scope="session")
def services():
    """PostgreSQL (ny_taxi and Airflow's metadata), the GCS, BigQuery and Pub/Sub emulators, started once."""
    _session.start()
    return _session


@pytest.fixture(scope="session")
def pg_uri(services) -> str:
    return f"postgresql://root:root@127.0.0.1:{services.ports['pg_port']}/ny_taxi"


@pytest.fixture
def pg(pg_uri):
    import psycopg

    with psycopg.connect(pg_uri, autocommit=True) as conn:
        yield conn


def _dags_in(path: Path) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(path))
    assert not bag.import_errors, bag.import_errors
    return bag.dags


class ParsedDags:
    """The project's DAG files as parsed, without the metadata database (DagBag.get_dag would ask it).
    A DAG's file is named by its dag_id, so `get_dag` parses that one file, once: a test process parses
    only the DAGs its tests use; `dags` parses the whole folder. Files are parsed in the environment the
    session had when this was created, whatever the test asking for a DAG has set for its own run (a DAG
    file may read a Variable when parsed)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._environment = dict(os.environ)
        self._parsed: dict = {}
        self._whole_folder = False

    def _parse(self, path: Path) -> dict:
        from unittest import mock

        with mock.patch.dict(os.environ, self._environment, clear=True):
            return _dags_in(path)

    @property
    def dags(self) -> dict:
        if not self._whole_folder:
            for dag_id, dag in self._parse(self.folder).items():
                self._parsed.setdefault(dag_id, dag)
            self._whole_folder = True
        return dict(self._parsed)

    @property
    def dag_ids(self) -> list[str]:
        return list(self.dags)

    def get_dag(self, dag_id: str):
        if dag_id not in self._parsed:
            self._parsed[dag_id] = self._parse(self.folder / f"{dag_id}.py")[dag_id]
        return self._parsed[dag_id]


@pytest.fixture(scope="session")
def dagbag() -> ParsedDags:
    return ParsedDags(REPO_ROOT / "dags")


def fresh_dag(dag_id: str):
    """The DAG parsed anew from its file: in-process dag.test() renders templates onto the task objects
    themselves, so a run with other Variables must not use (and leave its values in) the session's DAG."""
    return _dags_in(REPO_ROOT / "dags" / f"{dag_id}.py")[dag_id]


@pytest.fixture
def quick_retries(monkeypatch):
    """Every task of a DAG keeps its retries but waits a second before each, for this test only: a
    retried failure is told from a fail-at-once one by its try number, in seconds."""
    from datetime import timedelta

    def quick(dag):
        for task in dag.tasks:
            monkeypatch.setattr(task, "retry_delay", timedelta(seconds=1))
            monkeypatch.setattr(task, "max_retry_delay", timedelta(seconds=1))
        return dag

    return quick


def run_dag(dag, **kwargs):
    """Run a DAG for real with `dag.test()` (tasks execute, XComs and states are stored)."""
    _session.start()
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


def artifacts_dir(name: str) -> Path:
    """Where a test leaves what a person may want to look at after the run (stack logs, screenshots):
    $ZOOMCAMP_TEST_ARTIFACTS/<name>, by default .local/test-artifacts/<name> (kept after the session); under
    pytest-xdist, <name>-<worker> (gw0, gw1, ...), since each worker starts its own stacks."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    path = Path(os.environ.get("ZOOMCAMP_TEST_ARTIFACTS") or REPO_ROOT / ".local" / "test-artifacts") / (
        f"{name}-{worker}" if worker else name)
    path.mkdir(parents=True, exist_ok=True)
    return path


# DAGs of the shared stack that start runs by themselves (active from creation): paused for the session, so no
# run of theirs appears in another module's counts; a module that runs one unpauses it (`stack.unpaused`).
SCHEDULED_ON_THEIR_OWN = ("event-file-ingest-reconcile",)


@pytest.fixture(scope="session")
def airflow_stack(services):
    """A real Airflow (scheduler, dag-processor, triggerer, api-server) shared by the session's modules,
    on its own metadata database. A module sets what it needs with `airflow_stack.variables(...)` /
    `.connection(...)` and leaves the stack as it found it."""
    log = artifacts_dir("airflow") / "airflow-stack.log"
    log.unlink(missing_ok=True)
    with services.airflow_stack("airflow_stack", log) as stack:
        for dag_id in SCHEDULED_ON_THEIR_OWN:
            stack.wait_for_dag(dag_id)
            stack.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})
        yield stack


@pytest.fixture(scope="session")
def google_pubsub_emulator(tmp_path_factory):
    """Google's own Pub/Sub emulator (tests/fixtures/google_pubsub_emulator.py), started once, on a free port."""
    from tests.fixtures.google_pubsub_emulator import GooglePubSubEmulator

    emulator = GooglePubSubEmulator(tmp_path_factory.mktemp("google-pubsub-emulator")).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def gemini_standin():
    """A local stand-in of the Gemini REST API (tests/fixtures/gemini_standin.py) for this module."""
    from tests.fixtures.gemini_standin import GeminiStandIn

    server = GeminiStandIn().start()
    yield server
    server.stop()
