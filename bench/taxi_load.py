"""Benchmark of flow 04's load against a bare COPY and the course's SQL sequence, plus DAG parse times.

Prints figures; asserts nothing. Each timed step starts after a CHECKPOINT, so none pays for
writing out what the step before it left in shared buffers.
Targets (2-core machine): load <= 2.0 x bare COPY, rerun <= 1.0 x,
peak RSS <= 200 MB for a yellow month (~1.5 M rows, ~130 MB) and for a file twice as large;
each DAG file parses in <= 0.3 s in a warm process. The last line is machine-readable.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from bench.services import bench_services, machine_line, settle
from include.zoomcamp.taxi.schemas import YELLOW
from tests.fixtures.course_sql import course_load
from tests.fixtures.taxi import FileServer, realistic_strays, write_taxi_gz

REPO_ROOT = Path(__file__).resolve().parent.parent
ROWS = int(os.environ.get("BENCH_ROWS", 1_500_000))

# Runs in a fresh process so its peak RSS is the load's own (download, verify, COPY, merge).
LOADER = """
import json, resource, sys, tempfile, time
from pathlib import Path
import psycopg
from include.zoomcamp.taxi import postgres, source
uri, url, file_name = sys.argv[1:4]
month_schema = __import__('include.zoomcamp.taxi.schemas', fromlist=['YELLOW']).YELLOW
start = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    downloaded = source.download(url, Path(tmp) / (file_name + '.gz'))
    with psycopg.connect(uri) as conn:
        report = postgres.unchanged_load(conn, month_schema, file_name, downloaded.md5)
        downloaded_at = time.perf_counter() - start
        if report is None:
            report = postgres.load_month(conn, month_schema, file_name, downloaded, Path(tmp))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "download_seconds": downloaded_at,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  **report.as_dict()}))
"""


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_copy(conn, csv_path: Path) -> float:
    cols = ", ".join(f"{c.name} {c.pg_type}" for c in YELLOW.columns)
    conn.execute("DROP TABLE IF EXISTS bench_bare")
    conn.execute(f"CREATE UNLOGGED TABLE bench_bare ({cols})")

    def run():
        with open(csv_path, "rb") as src, conn.cursor().copy(
                "COPY bench_bare FROM STDIN (FORMAT csv, HEADER true)") as copy:
            while chunk := src.read(1 << 20):
                copy.write(chunk)
    seconds = timed(run)
    conn.execute("DROP TABLE bench_bare")
    return seconds


def course_sequence(conn, csv_path: Path, file_name: str) -> float:
    """The Kestra flow's statements, timed into a throw-away schema."""
    conn.execute("DROP SCHEMA IF EXISTS course CASCADE")

    def chunks():
        with open(csv_path, "rb") as src:
            while chunk := src.read(1 << 20):
                yield chunk
    seconds = timed(lambda: course_load(conn, YELLOW, file_name, chunks(), "course"))
    conn.execute("DROP SCHEMA course CASCADE")
    return seconds


def dag_load(uri: str, url: str, file_name: str) -> dict:
    settle(uri)
    out = subprocess.run([sys.executable, "-c", LOADER, uri, url, file_name], cwd=REPO_ROOT, check=True,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_times() -> dict[str, float]:
    """Seconds to parse each DAG file in a warm process (Airflow already imported, file parsed once)."""
    script = (
        "import json, runpy, time, glob, os\n"
        "import airflow.sdk\n"
        "out = {}\n"
        "for f in sorted(glob.glob('dags/*.py')):\n"
        "    runpy.run_path(f)\n"
        "    t = time.perf_counter(); runpy.run_path(f); out[os.path.basename(f)] = time.perf_counter() - t\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    with bench_services() as (root, uri, _):
        site = root / "site"
        print(machine_line())
        gz_small = write_taxi_gz(site, "yellow", 2020, 12, ROWS, sparse=True, strays=realistic_strays(ROWS))
        gz_large = write_taxi_gz(site, "yellow", 2021, 1, ROWS * 2, sparse=True, strays=realistic_strays(ROWS * 2))
        csv_path = root / "yellow_tripdata_2020-12.csv"
        with gzip.open(gz_small, "rb") as src, open(csv_path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        size_mb = csv_path.stat().st_size / 2**20
        print(f"yellow month: {ROWS:,} rows ({realistic_strays(ROWS)} dated far from the month), "
              f"{size_mb:.1f} MiB uncompressed, {gz_small.stat().st_size / 2**20:.1f} MiB gzipped")

        with psycopg.connect(uri, autocommit=True) as conn:
            settle(uri)
            bare = bare_copy(conn, csv_path)
            settle(uri)
            course = course_sequence(conn, csv_path, csv_path.name)
        with FileServer(site) as server:
            fresh = dag_load(uri, f"{server.url}/yellow/{gz_small.name}", "yellow_tripdata_2020-12.csv")
            rerun = dag_load(uri, f"{server.url}/yellow/{gz_small.name}", "yellow_tripdata_2020-12.csv")
            large = dag_load(uri, f"{server.url}/yellow/{gz_large.name}", "yellow_tripdata_2021-01.csv")
        assert fresh["rows_inserted"] == ROWS and rerun["rows_inserted"] == 0, (fresh, rerun)

        print(f"{'step':<42}{'seconds':>9}{'x bare COPY':>13}")
        for name, seconds in [("bare COPY into an unlogged table", bare),
                              ("course SQL (copy, update all, merge)", course),
                              ("this DAG's load, fresh", fresh["seconds"]),
                              ("this DAG's load, rerun", rerun["seconds"]),
                              (f"this DAG's load, {ROWS * 2:,} rows", large["seconds"])]:
            print(f"{name:<42}{seconds:>9.2f}{seconds / bare:>13.2f}")
        print(f"  of the fresh load: download {fresh['download_seconds']:.2f} s, "
              f"verification and database {fresh['seconds'] - fresh['download_seconds']:.2f} s")
        print(f"peak RSS of the load process: {fresh['peak_rss_mb']:.0f} MB (month), "
              f"{large['peak_rss_mb']:.0f} MB (twice as large)")
        print("DAG file parse time (warm process):")
        for name, seconds in parse_times().items():
            print(f"  {name:<42}{seconds:.3f} s")
        peak = max(fresh["peak_rss_mb"], large["peak_rss_mb"])
        print(f"load_ratio={fresh['seconds'] / bare:.2f} rerun_ratio={rerun['seconds'] / bare:.2f} "
              f"peak_rss_mb={peak:.0f}")


if __name__ == "__main__":
    main()
