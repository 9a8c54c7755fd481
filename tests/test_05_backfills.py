"""Flow 05's backfills through the real scheduler, as the README tells a user to run them.

`airflow backfill create` on a running Airflow (scheduler, dag-processor, api-server, triggerer),
months with stray trips served from loopback; run states read from the REST API, rows from Postgres.
Each test starts from empty taxi tables and no run of the twins, and leaves them so.
"""
from __future__ import annotations

import pytest

from include.zoomcamp import config
from tests.fixtures.taxi import write_taxi_gz

ROWS = 3000
STRAYS = 12
YELLOW = "05_postgres_taxi_scheduled_yellow"
GREEN = "05_postgres_taxi_scheduled_green"


@pytest.fixture(scope="module")
def site(airflow_stack, release_site):
    """yellow and green 2019-01 .. 2019-08 on the release site, which the stack reads for this module."""
    root, url = release_site
    for taxi in ("yellow", "green"):
        for month in range(1, 9):
            write_taxi_gz(root, taxi, 2019, month, ROWS, strays=STRAYS)
    with airflow_stack.variables({config.TAXI_DATA_BASE_URL_VAR: url}):
        for dag_id in (YELLOW, GREEN):
            airflow_stack.wait_for_dag(dag_id)
        yield


@pytest.fixture
def stack(airflow_stack, site, pg):
    """The running Airflow, on empty taxi tables and no run of the twins (both unpaused), before and after."""
    def clean():
        pg.execute("DROP TABLE IF EXISTS public.yellow_tripdata, public.green_tripdata, public.zoomcamp_loads")
        for dag_id in (YELLOW, GREEN):
            airflow_stack.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
            for run in airflow_stack.runs(dag_id):
                airflow_stack.api("DELETE", airflow_stack.run_path(dag_id, run["dag_run_id"]))
    clean()
    yield airflow_stack
    clean()


def _backfill(stack, dag_id: str, start: str, end: str, *extra: str) -> dict:
    stack.cli("backfill", "create", "--dag-id", dag_id, "--from-date", start, "--to-date", end, *extra)
    return stack.latest_backfill(dag_id)


def _logical_months(runs: list[dict]) -> list[str]:
    return sorted(r["logical_date"][:7] for r in runs)


def _rows_per_file(pg, table: str) -> dict[str, int]:
    return dict(pg.execute(f"SELECT filename, count(*) FROM public.{table} GROUP BY 1").fetchall())


def test_a_backfill_loads_exactly_the_months_asked_for(stack, pg):
    runs = stack.wait_for_backfill(_backfill(stack, YELLOW, "2019-01-01", "2019-03-31"))
    assert _logical_months(runs) == ["2019-01", "2019-02", "2019-03"]
    assert {r["state"] for r in runs} == {"success"}
    assert _rows_per_file(pg, "yellow_tripdata") == {f"yellow_tripdata_2019-0{m}.csv": ROWS for m in (1, 2, 3)}
    # The DAG did not catch up by itself: every run of it is one the backfill asked for.
    assert {r["run_type"] for r in stack.runs(YELLOW)} == {"backfill"}


def test_overlapping_backfills_add_no_duplicate(stack, pg):
    stack.wait_for_backfill(_backfill(stack, YELLOW, "2019-05-01", "2019-06-30"))
    # Rerun 06 (already loaded) and add 07: the loader inserts only ids not present yet.
    runs = stack.wait_for_backfill(_backfill(stack, YELLOW, "2019-06-01", "2019-07-31",
                                             "--reprocess-behavior", "completed"))
    assert _logical_months(runs) == ["2019-06", "2019-07"] and {r["state"] for r in runs} == {"success"}
    assert _rows_per_file(pg, "yellow_tripdata") == {f"yellow_tripdata_2019-0{m}.csv": ROWS for m in (5, 6, 7)}
    distinct = pg.execute("SELECT count(DISTINCT unique_row_id) = count(*) FROM public.yellow_tripdata").fetchone()[0]
    assert distinct


def test_a_paused_dag_backfills_once_unpaused_and_nothing_more(stack, pg):
    """The README: a paused DAG's backfill waits (Airflow runs no paused DAG); unpausing runs exactly
    the backfill's months, since the scheduled twins never catch up by themselves."""
    stack.cli("dags", "pause", GREEN)
    backfill = _backfill(stack, GREEN, "2019-02-01", "2019-03-31")
    # A control run of the unpaused twin, created after the backfill, finishes: the scheduler has
    # passed over the paused DAG's queued runs meanwhile.
    control = stack.wait_for_backfill(_backfill(stack, YELLOW, "2019-08-01", "2019-08-31"))
    assert [r["state"] for r in control] == ["success"]
    waiting = stack.runs(GREEN)
    assert len(waiting) == 2 and {r["state"] for r in waiting} == {"queued"}, waiting
    assert not pg.execute("SELECT to_regclass('public.green_tripdata')").fetchone()[0]

    stack.cli("dags", "unpause", GREEN)
    runs = stack.wait_for_backfill(backfill)
    assert {r["state"] for r in runs} == {"success"}
    assert _rows_per_file(pg, "green_tripdata") == {f"green_tripdata_2019-0{m}.csv": ROWS for m in (2, 3)}
    assert {r["run_type"] for r in stack.runs(GREEN)} == {"backfill"}


def test_a_backfill_from_the_ui_loads_its_months(stack, pg):
    """Trigger > Backfill in the UI posts this request to the REST API (the form's defaults)."""
    backfill = stack.api("POST", "/api/v2/backfills", {
        "dag_id": GREEN, "from_date": "2019-05-01T00:00:00Z", "to_date": "2019-06-30T00:00:00Z",
        "max_active_runs": 10, "reprocess_behavior": "none", "run_backwards": False})
    runs = stack.wait_for_backfill(backfill)
    assert _logical_months(runs) == ["2019-05", "2019-06"] and {r["state"] for r in runs} == {"success"}
    assert _rows_per_file(pg, "green_tripdata") == {f"green_tripdata_2019-0{m}.csv": ROWS for m in (5, 6)}
