"""The course's homework at scale: a 31-month backfill of flow 05 through the real scheduler.

Starts the embedded services and `airflow standalone` (LocalExecutor) in a temporary directory,
serves 31 generated yellow months of BENCH_BACKFILL_ROWS rows (default 100 000, with stray trips)
over loopback, and runs `airflow backfill create` for 2019-01 .. 2021-07 twice:
1. as a user would (the backfill's own concurrency, loads bounded by the `taxi_loads` pool of
   ZOOMCAMP_TAXI_LOAD_SLOTS slots), timed from `backfill create` to the last run's success;
2. after emptying the table, the same months one run at a time (`--max-active-runs 1`), whose
   `extract_and_load` durations are the isolated loads.
Prints both wall times and the ratio of (1) to the sum of the isolated loads (targets on the 2-core
machine: <= 120 s, ratio <= 1.5). Asserts only that every run succeeded with exact rows.
"""
from __future__ import annotations

import os
import time

import psycopg

from bench.services import bench_services, machine_line
from devstack import airflow
from include.zoomcamp import config
from tests.fixtures.airflow_stack import AirflowStack
from tests.fixtures.taxi import FileServer, realistic_strays, write_taxi_gz

ROWS = int(os.environ.get("BENCH_BACKFILL_ROWS", 100_000))
DAG_ID = "05_postgres_taxi_scheduled_yellow"
FROM, TO = "2019-01-01", "2021-07-31"
MONTHS = 31


def backfill(stack: AirflowStack, *extra: str) -> tuple[float, list[dict]]:
    """Wall seconds from `backfill create` to the last run finished, and the runs."""
    start = time.perf_counter()
    stack.cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", FROM, "--to-date", TO, *extra)
    runs = stack.wait_for_backfill(stack.latest_backfill(DAG_ID), timeout=1800)
    seconds = time.perf_counter() - start
    assert len(runs) == MONTHS and {r["state"] for r in runs} == {"success"}, runs
    return seconds, runs


def load_durations(stack: AirflowStack, since: str) -> list[float]:
    tis = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/~/taskInstances?task_id=extract_and_load"
                           f"&limit=100&start_date_gte={since}")["task_instances"]
    return [ti["duration"] for ti in tis if ti["state"] == "success"]


def empty_table(uri: str) -> None:
    with psycopg.connect(uri, autocommit=True) as pg:
        pg.execute("DROP TABLE IF EXISTS public.yellow_tripdata, public.zoomcamp_loads")


def row_count(uri: str) -> int:
    with psycopg.connect(uri) as pg:
        return pg.execute("SELECT count(*) FROM public.yellow_tripdata").fetchone()[0]


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def main() -> None:
    with bench_services() as (root, uri, env):
        print(machine_line())
        site = root / "site"
        for i in range(MONTHS):
            write_taxi_gz(site, "yellow", 2019 + i // 12, i % 12 + 1, ROWS, strays=realistic_strays(ROWS))
        slots = config.taxi_load_slots()
        print(f"{MONTHS} yellow months of {ROWS:,} rows ({realistic_strays(ROWS)} stray trips each); "
              f"pool {config.TAXI_LOAD_POOL}: {slots} slots")
        airflow.prepare_metadata(env)
        with FileServer(site) as server:
            stack_env = {**os.environ, **env, "AIRFLOW_VAR_TAXI_DATA_BASE_URL": server.url}
            with AirflowStack(stack_env, root / "airflow-standalone.log") as stack:
                run_scenarios(stack, uri)


def run_scenarios(stack: AirflowStack, uri: str) -> None:
    stack.wait_for_dag(DAG_ID)

    since = utc_now()
    wall, _ = backfill(stack)
    assert row_count(uri) == MONTHS * ROWS
    concurrent_loads = load_durations(stack, since)
    print(f"backfill as a user runs it: {wall:.1f} s wall for {MONTHS} months "
          f"(extract_and_load tasks: {sum(concurrent_loads):.1f} s in all, "
          f"{max(concurrent_loads):.1f} s the longest)")

    empty_table(uri)
    since = utc_now()
    one_by_one_wall, _ = backfill(stack, "--reprocess-behavior", "completed", "--max-active-runs", "1")
    assert row_count(uri) == MONTHS * ROWS
    isolated = load_durations(stack, since)
    assert len(isolated) == MONTHS, isolated
    print(f"the same months one run at a time: {one_by_one_wall:.1f} s wall; "
          f"isolated loads (extract_and_load): {sum(isolated):.1f} s in all, "
          f"{min(isolated):.2f}-{max(isolated):.2f} s each")
    print(f"backfill_seconds={wall:.1f} isolated_sum_seconds={sum(isolated):.1f} "
          f"backfill_ratio={wall / sum(isolated):.2f}")


if __name__ == "__main__":
    main()
