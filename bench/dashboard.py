"""The monitoring dashboard's summary endpoint against 10 000 runs (walkthrough 4_2).

Starts the embedded services and `airflow standalone` in a temporary directory, writes
BENCH_DASHBOARD_RUNS finished runs (default 10 000; 85 % success, 15 % failed) spread over the last
30 days across every parsed DAG straight into the metadata DB, then times
GET /zoomcamp-dashboard/api/summary (days=7 and days=30, with and without a tag) and the HTML page
through the api-server, as the UI calls them (JWT, loopback HTTP). Target: median <= 200 ms.
Prints figures; asserts nothing. The last line is machine-readable.
"""
from __future__ import annotations

import os
import random
import statistics
import time
import urllib.request
from datetime import datetime, timedelta, timezone

from bench.services import bench_services, machine_line

RUNS = int(os.environ.get("BENCH_DASHBOARD_RUNS", 10_000))
REPEAT = int(os.environ.get("BENCH_DASHBOARD_REPEAT", 20))


def seed(dag_ids: list[str], count: int) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    rng = random.Random(11)
    now = datetime.now(timezone.utc)
    rows = []
    for i in range(count):
        when = now - timedelta(minutes=rng.randrange(30 * 24 * 60), seconds=i % 60, microseconds=i)
        rows.append({"dag_id": dag_ids[i % len(dag_ids)], "run_id": f"bench_{i}", "run_type": "scheduled",
                     "state": "success" if rng.random() < 0.85 else "failed", "run_after": when,
                     "logical_date": when, "queued_at": when, "start_date": when,
                     "end_date": when + timedelta(seconds=rng.randrange(5, 600)), "clear_number": 0})
    with create_session(scoped=False) as session:
        for start in range(0, len(rows), 2000):
            session.execute(DagRun.__table__.insert(), rows[start:start + 2000])


def timed(stack, path: str) -> list[float]:
    headers = {"Authorization": f"Bearer {stack._token}"}
    urllib.request.urlopen(urllib.request.Request(f"{stack.base_url}{path}", headers=headers)).read()  # warm
    seconds = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(f"{stack.base_url}{path}", headers=headers)) as r:
            r.read()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    with bench_services() as (root, _, env):
        print(machine_line())
        os.environ.update(env)
        from devstack import airflow
        from tests.fixtures.airflow_stack import AirflowStack

        airflow.prepare_metadata(env)
        with AirflowStack({**os.environ, **env}, root / "airflow-standalone.log") as stack:
            stack.wait_for_dag("02_python")
            deadline = time.monotonic() + 120
            while stack.api("GET", "/api/v2/dags?limit=1")["total_entries"] < 10 and time.monotonic() < deadline:
                time.sleep(2)
            dag_ids = [d["dag_id"] for d in stack.api("GET", "/api/v2/dags?limit=100")["dags"]]
            start = time.perf_counter()
            seed(dag_ids, RUNS)
            print(f"seeded {RUNS:,} runs over 30 days across {len(dag_ids)} DAGs "
                  f"in {time.perf_counter() - start:.1f} s")
            medians = {}
            api = "/zoomcamp-dashboard/api/summary"
            for label, path in [("summary days=7", f"{api}?days=7"), ("summary days=30", f"{api}?days=30"),
                                ("summary days=30 tag=zoomcamp", f"{api}?days=30&tag=zoomcamp"),
                                ("page days=30", "/zoomcamp-dashboard/?days=30")]:
                seconds = timed(stack, path)
                medians[label] = statistics.median(seconds) * 1000
                print(f"{label}: median {medians[label]:.0f} ms, max {max(seconds) * 1000:.0f} ms "
                      f"over {REPEAT} requests (target median <= 200 ms)")
            print("dashboard_ms " + " ".join(f"{k.replace(' ', '_')}={v:.0f}" for k, v in medians.items()))


if __name__ == "__main__":
    main()
