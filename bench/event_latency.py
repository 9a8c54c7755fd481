"""Latency of walkthrough 3_5's event-driven ingest: upload under landing/ → rows visible in BigQuery.

`python -m bench.event_latency` (BENCH_EVENT_UPLOADS, default 5): throw-away embedded services and a
real Airflow (scheduler, triggerer, dag-processor, api-server); runs `event-file-ingest-setup`, then
uploads one small yellow Parquet file at a time and polls BigQuery until its rows are there. Prints
the figures and asserts nothing. The polling alternative it replaces (a sensor or poke schedule on
the prefix) waits on average poke_interval/2 before even starting a run.
"""
from __future__ import annotations

import os
import statistics
import time

from bench.services import bench_services, machine_line
from devstack import airflow
from tests.fixtures.airflow_stack import AirflowStack

UPLOADS = int(os.environ.get("BENCH_EVENT_UPLOADS", 5))
ROWS = 300
TIMEOUT = 180


def wait(predicate, timeout: float = TIMEOUT, every: float = 0.2) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic()
        time.sleep(every)
    raise TimeoutError("gave up waiting")


def new_runs(stack: AirflowStack, known: set[str]) -> list[str]:
    """The ids of event-file-ingest's runs not in `known`."""
    return [run["dag_run_id"] for run in stack.runs("event-file-ingest") if run["dag_run_id"] not in known]


def main() -> None:
    with bench_services() as (root, _uri, env):
        os.environ.update(env)
        from tests.fixtures.yellow_cab import bigquery_client, rows_of, upload, yellow_parquet

        print(machine_line())
        airflow.prepare_metadata(env)
        with AirflowStack({**os.environ, **env}, root / "airflow-standalone.log") as stack:
            for dag_id in ("event-file-ingest-setup", "event-file-ingest"):
                stack.wait_for_dag(dag_id)
            setup_run = stack.trigger("event-file-ingest-setup")
            assert stack.wait_for_run("event-file-ingest-setup", setup_run)["state"] == "success"
            bq = bigquery_client()
            time.sleep(10)  # let the triggerer start the watcher after the subscription exists
            latencies, starts = [], []
            for i in range(UPLOADS + 1):  # the first upload warms up (task process imports, caches)
                name = f"landing/bench_{i}.parquet"
                data = yellow_parquet(ROWS, seed=i)
                runs_before = {run["dag_run_id"] for run in stack.runs("event-file-ingest")}
                t0 = time.monotonic()
                generation = upload(name, data)
                t_run = wait(lambda: new_runs(stack, runs_before), every=0.1)
                t_rows = wait(lambda: rows_of(bq, name, generation) == ROWS)
                if i:
                    latencies.append(t_rows - t0)
                    starts.append(t_run - t0)
                print(f"upload {i}{' (warm-up)' if not i else ''}: run created after {t_run - t0:.1f} s, "
                      f"rows visible after {t_rows - t0:.1f} s")
                for run_id in new_runs(stack, runs_before):
                    stack.wait_for_run("event-file-ingest", run_id)
            print(f"upload → rows visible over {UPLOADS} uploads: median {statistics.median(latencies):.1f} s, "
                  f"min {min(latencies):.1f} s, max {max(latencies):.1f} s; upload → run created: median "
                  f"{statistics.median(starts):.1f} s")


if __name__ == "__main__":
    main()
