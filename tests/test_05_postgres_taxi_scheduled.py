"""Flow 05: logical dates map to the course's files over the published range, and a scheduled run loads."""
from __future__ import annotations

import pendulum
import pytest

from include.zoomcamp.taxi.source import TaxiMonth
from tests.conftest import logical_dates, run_dag
from tests.fixtures.taxi import FileServer, write_taxi_gz


@pytest.mark.parametrize(("taxi", "hour"), [("green", 9), ("yellow", 10)])
def test_published_range_maps_each_month_to_its_file(dagbag, taxi, hour):
    dag = dagbag.get_dag(f"05_postgres_taxi_scheduled_{taxi}")
    # Backfills load past months, and only while the DAG is active; it never catches up by itself.
    assert dag.catchup is False and dag.is_paused_upon_creation is False
    assert dag.task_dict["extract_and_load"].pool == "taxi_loads"
    dates = logical_dates(dag)
    assert len(dates) == 31  # 2019-01 .. 2021-07
    assert all(d.day == 1 and d.hour == hour and d.minute == 0 for d in dates)
    files = [TaxiMonth.from_logical_date(taxi, d).file_name for d in dates]
    assert files[0] == f"{taxi}_tripdata_2019-01.csv"
    assert files[12] == f"{taxi}_tripdata_2020-01.csv"
    assert files[-1] == f"{taxi}_tripdata_2021-07.csv"
    assert len(set(files)) == 31


def test_homework_timezone_is_configurable(monkeypatch):
    from include.zoomcamp.schedules import published_window

    monkeypatch.setenv("ZOOMCAMP_TIMEZONE", "America/New_York")
    start, _ = published_window()
    assert start.timezone_name == "America/New_York"
    assert TaxiMonth.from_logical_date("green", pendulum.datetime(2021, 3, 1, 9, tz="America/New_York")).month == "03"


def test_a_scheduled_run_loads_the_month_of_its_logical_date(dagbag, pg, tmp_path, monkeypatch):
    write_taxi_gz(tmp_path, "green", 2019, 6, 500)
    with FileServer(tmp_path) as server:
        monkeypatch.setenv("AIRFLOW_VAR_TAXI_DATA_BASE_URL", server.url)
        dag = dagbag.get_dag("05_postgres_taxi_scheduled_green")
        run = run_dag(dag, logical_date=pendulum.datetime(2019, 6, 1, 9, tz="UTC"))
    assert run.state == "success"
    count = pg.execute("SELECT count(*) FROM public.green_tripdata WHERE filename = 'green_tripdata_2019-06.csv'")
    assert count.fetchone()[0] == 500
