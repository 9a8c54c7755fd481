"""Flow 05's backfills through the real scheduler, as the README tells a user to run them.

`airflow backfill create` on a running Airflow (scheduler, dag-processor, api-server, triggerer),
months with stray trips served from loopback; run states read from the REST API, rows from Postgres.
"""
from __future__ import annotations

import time

import pytest

from tests.fixtures.taxi import write_taxi_gz

ROWS = 3000
STRAYS = 12
YELLOW = "05_postgres_taxi_scheduled_yellow"
GREEN = "05_postgres_taxi_scheduled_green"


@pytest.fixture(scope="module")
def months(release_site):
    """yellow and green 2019-01 .. 2019-08 on the release site."""
    root, _ = release_site
    for taxi in ("yellow", "green"):
        for month in range(1, 9):
            write_taxi_gz(root, taxi, 2019, month, ROWS, strays=STRAYS)


@pytest.fixture(scope="module")
def stack(airflow_stack, months, pg_uri):
    """The running Airflow, on empty taxi tables (emptied again afterwards for the other modules)."""
    import psycopg

    def empty_tables():
        with psycopg.connect(pg_uri, autocommit=True) as pg:
            pg.execute("DROP TABLE IF EXISTS public.yellow_tripdata, public.green_tripdata, public.zoomcamp_loads")
    empty_tables()
    for dag_id in (YELLOW, GREEN):
        airflow_stack.wait_for_dag(dag_id)
    yield airflow_stack
    empty_tables()


def _backfill(stack, dag_id: str, start: str, end: str, *extra: str) -> None:
    stack.cli("backfill", "create", "--dag-id", dag_id, "--from-date", start, "--to-date", end, *extra)


def _backfill_runs(stack, dag_id: str, count: int) -> list[dict]:
    runs = stack.wait_for_runs(dag_id, count)
    assert len(runs) == count, runs
    stack.wait_for_backfills(dag_id)
    return runs


def _rows_per_file(pg, table: str) -> dict[str, int]:
    return dict(pg.execute(f"SELECT filename, count(*) FROM public.{table} GROUP BY 1").fetchall())


def test_a_backfill_loads_exactly_the_months_asked_for(stack, pg):
    _backfill(stack, YELLOW, "2019-01-01", "2019-03-31")
    runs = _backfill_runs(stack, YELLOW, 3)
    assert [r["logical_date"][:10] for r in runs] == ["2019-01-01", "2019-02-01", "2019-03-01"]
    assert {r["state"] for r in runs} == {"success"}
    assert _rows_per_file(pg, "yellow_tripdata") == {f"yellow_tripdata_2019-0{m}.csv": ROWS for m in (1, 2, 3)}
    # The DAG did not catch up by itself: every run of it is one the backfill asked for.
    assert not [r for r in stack.runs(YELLOW) if r["run_type"] == "scheduled"]


def test_overlapping_backfills_add_no_duplicate(stack, pg):
    _backfill(stack, YELLOW, "2019-05-01", "2019-06-30")
    _backfill_runs(stack, YELLOW, 5)  # 01-03 above, 05-06
    # Rerun 06 (already loaded) and add 07: the loader inserts only ids not present yet.
    _backfill(stack, YELLOW, "2019-06-01", "2019-07-31", "--reprocess-behavior", "completed")
    runs = _backfill_runs(stack, YELLOW, 6)
    assert {r["state"] for r in runs} == {"success"}
    loaded = _rows_per_file(pg, "yellow_tripdata")
    assert {name: loaded[name] for name in loaded if name >= "yellow_tripdata_2019-05"} == {
        f"yellow_tripdata_2019-0{m}.csv": ROWS for m in (5, 6, 7)}
    distinct = pg.execute("SELECT count(DISTINCT unique_row_id) = count(*) FROM public.yellow_tripdata").fetchone()[0]
    assert distinct


def test_a_paused_dag_backfills_once_unpaused_and_nothing_more(stack, pg):
    """The README: a paused DAG's backfill waits (Airflow runs no paused DAG); unpausing runs exactly
    the backfill's months, since the scheduled twins never catch up by themselves."""
    stack.cli("dags", "pause", GREEN)
    _backfill(stack, GREEN, "2019-02-01", "2019-03-31")
    time.sleep(15)  # several scheduler loops
    waiting = [r for r in stack.runs(GREEN) if r["run_type"] == "backfill"]
    assert len(waiting) == 2 and {r["state"] for r in waiting} == {"queued"}, waiting
    assert not pg.execute("SELECT to_regclass('public.green_tripdata')").fetchone()[0]

    stack.cli("dags", "unpause", GREEN)
    runs = _backfill_runs(stack, GREEN, 2)
    assert {r["state"] for r in runs} == {"success"}
    assert _rows_per_file(pg, "green_tripdata") == {f"green_tripdata_2019-0{m}.csv": ROWS for m in (2, 3)}
    assert not [r for r in stack.runs(GREEN) if r["run_type"] == "scheduled"]


def test_a_backfill_from_the_ui_loads_its_months(stack, pg):
    """Trigger > Backfill in the UI posts this request to the REST API (the form's defaults)."""
    stack.api("POST", "/api/v2/backfills", {"dag_id": GREEN, "from_date": "2019-05-01T00:00:00Z",
                                            "to_date": "2019-06-30T00:00:00Z", "max_active_runs": 10,
                                            "reprocess_behavior": "none", "run_backwards": False})
    runs = _backfill_runs(stack, GREEN, 4)  # 02-03 above, 05-06
    assert {r["state"] for r in runs} == {"success"}
    loaded = _rows_per_file(pg, "green_tripdata")
    assert loaded == {f"green_tripdata_2019-0{m}.csv": ROWS for m in (2, 3, 5, 6)}
