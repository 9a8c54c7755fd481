"""Benchmark of flow 04's load against a bare COPY and the course's SQL sequence, plus DAG parse times.

Prints figures; asserts nothing but the row counts. Each timed step starts after a CHECKPOINT, so
none pays for writing out what the step before it left in shared buffers. BENCH_REPEATS times
(default 3): a bare COPY of the month's CSV into an unlogged table, the COPY this DAG's load makes alone
(its rows with their ids into the empty final table: the floor of the load), then this DAG's load of the
month into an empty table (fresh), again (rerun), and of a file twice as large into an empty table;
figures are the minimum and the median of the repeats, ratios taken within each repeat.
`--full-month` adds a month of 7.7 M rows (the size of yellow 2019-01) against its own bare COPY.
Targets (2-core machine): fresh load <= 1.4 x bare COPY, rerun <= 0.3 x, the file twice as large
<= 2.1 x the month's time, peak RSS <= 180 MB and the same (+-10 %) for the full month; each DAG
file parses in <= 0.3 s in a warm process. Figures are `name=value` lines; the last line sums up.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psycopg

from bench.services import backend_cpu_seconds, bench_services, machine_line, settle
from include.zoomcamp.taxi import postgres, row_ids
from include.zoomcamp.taxi.schemas import YELLOW
from tests.fixtures.course_sql import course_load
from tests.fixtures.taxi import FileServer, realistic_strays, write_taxi_gz

REPO_ROOT = Path(__file__).resolve().parent.parent
ROWS = int(os.environ.get("BENCH_ROWS", 1_500_000))
REPEATS = int(os.environ.get("BENCH_REPEATS", 3))
FULL_MONTH_ROWS = int(os.environ.get("BENCH_FULL_MONTH_ROWS", 7_700_000))  # yellow 2019-01

# Runs in a fresh process so its peak RSS is the load's own (download, verify, COPY, merge).
LOADER = """
import json, os, resource, sys, tempfile, time
from pathlib import Path
import psycopg
from include.zoomcamp.taxi import postgres, source
def backend_cpu_seconds(conn):  # as bench.services has it (imported here, it would count in the peak RSS)
    fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
uri, url, file_name = sys.argv[1:4]
month_schema = __import__('include.zoomcamp.taxi.schemas', fromlist=['YELLOW']).YELLOW
start = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    downloaded = source.download(url, Path(tmp) / (file_name + '.gz'))
    with psycopg.connect(uri) as conn:
        backend_start = backend_cpu_seconds(conn)
        report = postgres.unchanged_load(conn, month_schema, file_name, downloaded.md5)
        downloaded_at = time.perf_counter() - start
        if report is None:
            report = postgres.load_month(conn, month_schema, file_name, downloaded, Path(tmp))
        backend = backend_cpu_seconds(conn) - backend_start
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
# This program's own peak (VmHWM): Linux's ru_maxrss also counts the bench process it was started from.
status = Path("/proc/self/status")
lines = status.read_text().splitlines() if status.exists() else []
hwm = [line.split()[1] for line in lines if line.startswith("VmHWM:")]
peak_rss_mb = int(hwm[0]) / 1024 if hwm else usage.ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "download_seconds": downloaded_at,
                  "peak_rss_mb": peak_rss_mb, "cpu_seconds": usage.ru_utime + usage.ru_stime + backend,
                  **report.as_dict()}))
"""

def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_copy(conn, csv_path: Path) -> tuple[float, float]:
    """Seconds and CPU seconds (the Postgres backend's and this process's) of a bare COPY."""
    cols = ", ".join(f"{c.name} {c.pg_type}" for c in YELLOW.columns)
    conn.execute("DROP TABLE IF EXISTS bench_bare")
    conn.execute(f"CREATE UNLOGGED TABLE bench_bare ({cols})")

    def run():
        with open(csv_path, "rb") as src, conn.cursor().copy(
                "COPY bench_bare FROM STDIN (FORMAT csv, HEADER true)") as copy:
            while chunk := src.read(1 << 20):
                copy.write(chunk)
    cpu_start = backend_cpu_seconds(conn) + time.process_time()
    seconds = timed(run)
    cpu = backend_cpu_seconds(conn) + time.process_time() - cpu_start
    conn.execute("DROP TABLE bench_bare")
    return seconds, cpu


def annotated_rows(csv_path: Path, dest: Path) -> Path:
    """The month's rows as the one-pass load COPYs them (the line, its unique_row_id, the file name), strays
    last as the load sends them; computed here once, outside any timing."""
    annotated = row_ids.annotate_query(YELLOW, str(csv_path), csv_path.name)
    with duckdb.connect() as con, open(dest, "w") as out:
        for kind in (row_ids.IN_MONTH, row_ids.STRAY):
            for batch in con.execute(f"SELECT row FROM ({annotated}) WHERE kind = {kind}").to_arrow_reader(1 << 16):
                out.write("".join(batch.column(0).to_pylist()))
    return dest


def copy_floor(uri: str, rows_path: Path) -> float:
    """Seconds of the COPY the one-pass load makes, alone: its rows into an empty final table (logged, with
    its BRIN indexes), committed. The load cannot take less than this; the rest is its own work."""
    empty_tables(uri)
    with psycopg.connect(uri) as conn:
        with conn.transaction():
            postgres.ensure_tables(conn, YELLOW)
        settle(uri)

        def run():
            with conn.transaction(), open(rows_path, "rb") as src, \
                    conn.cursor().copy(postgres.one_pass_copy_sql(YELLOW)) as copy:
                while chunk := src.read(1 << 20):
                    copy.write(chunk)
        seconds = timed(run)
    empty_tables(uri)
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


def empty_tables(uri: str) -> None:
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.yellow_tripdata, public.zoomcamp_loads")


def gunzip(gz: Path, dest: Path) -> Path:
    with gzip.open(gz, "rb") as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return dest


def phases(load: dict) -> list[tuple[str, float]]:
    """The load's phases in order, download first."""
    return [("download", load["download_seconds"]), *load["phase_seconds"].items()]


def print_phases(label: str, load: dict) -> None:
    print(f"{label}: {load['seconds']:.2f} s by phase (stream = stream.ids, waiting for DuckDB's ids, + "
          "stream.copy, sending rows to Postgres and waiting for it; stream.verify_cpu is the CPU time "
          "of the thread reading and checking the file beside them)")
    for name, seconds in phases(load):
        key = name.replace(".", "_").replace("-", "_").replace(" ", "_")
        print(f"phase_{key}_seconds={seconds:.2f} phase_{key}_share={seconds / load['seconds']:.2f}")


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f}"


def main() -> None:
    full_month = "--full-month" in sys.argv[1:]
    with bench_services() as (root, uri, _):
        site = root / "site"
        print(machine_line(), f"load average {os.getloadavg()[0]:.1f}")
        gz_small = write_taxi_gz(site, "yellow", 2020, 12, ROWS, sparse=True, strays=realistic_strays(ROWS))
        gz_large = write_taxi_gz(site, "yellow", 2021, 1, ROWS * 2, sparse=True, strays=realistic_strays(ROWS * 2))
        csv_path = gunzip(gz_small, root / "yellow_tripdata_2020-12.csv")
        rows_path = annotated_rows(csv_path, root / "annotated_rows.txt")
        size_mb = csv_path.stat().st_size / 2**20
        print(f"yellow month: {ROWS:,} rows ({realistic_strays(ROWS)} dated far from the month), "
              f"{size_mb:.1f} MiB uncompressed, {gz_small.stat().st_size / 2**20:.1f} MiB gzipped; "
              f"{REPEATS} repeats")

        runs = []
        with FileServer(site) as server:
            small = (f"{server.url}/yellow/{gz_small.name}", "yellow_tripdata_2020-12.csv")
            large = (f"{server.url}/yellow/{gz_large.name}", "yellow_tripdata_2021-01.csv")
            for _ in range(REPEATS):
                empty_tables(uri)
                with psycopg.connect(uri, autocommit=True) as conn:
                    settle(uri)
                    bare, bare_cpu = bare_copy(conn, csv_path)
                floor = copy_floor(uri, rows_path)
                fresh, rerun = dag_load(uri, *small), dag_load(uri, *small)
                empty_tables(uri)
                twice = dag_load(uri, *large)
                assert fresh["rows_inserted"] == ROWS and rerun["rows_inserted"] == 0, (fresh, rerun)
                assert twice["rows_inserted"] == ROWS * 2, twice
                runs.append({"bare": bare, "bare_cpu": bare_cpu, "floor": floor, "fresh": fresh, "rerun": rerun,
                             "twice": twice})
                print(f"repeat {len(runs)}: bare COPY {bare:.2f} s, the load's COPY alone {floor:.2f} s, "
                      f"fresh {fresh['seconds']:.2f} s, "
                      f"rerun {rerun['seconds']:.2f} s, {ROWS * 2:,} rows {twice['seconds']:.2f} s, "
                      f"load average {os.getloadavg()[0]:.1f}")
        with psycopg.connect(uri, autocommit=True) as conn:
            settle(uri)
            course = course_sequence(conn, csv_path, csv_path.name)

        bares = [r["bare"] for r in runs]
        ratio = {step: [r[step]["seconds"] / r["bare"] for r in runs] for step in ("fresh", "rerun")}
        ratio["floor"] = [r["floor"] / r["bare"] for r in runs]
        ratio["twice"] = [r["twice"]["seconds"] / r["fresh"]["seconds"] for r in runs]
        # CPU of the load (this process and its Postgres backend) against the bare COPY's: what the
        # wall-clock ratio tends to when other work keeps both cores busy.
        ratio["cpu"] = [r["fresh"]["cpu_seconds"] / r["bare_cpu"] for r in runs]
        print(f"{'step (min / median of repeats)':<46}{'seconds':>15}{'x bare COPY':>15}")
        for name, seconds, times in [
                ("bare COPY into an unlogged table", bares, None),
                ("the load's COPY alone (logged, ids, indexes)", [r["floor"] for r in runs], ratio["floor"]),
                ("course SQL (copy, update all, merge), once", [course], [course / statistics.median(bares)]),
                ("this DAG's load, fresh", [r["fresh"]["seconds"] for r in runs], ratio["fresh"]),
                ("this DAG's load, rerun", [r["rerun"]["seconds"] for r in runs], ratio["rerun"])]:
            print(f"{name:<46}{spread(seconds):>15}{spread(times) if times else '1.00':>15}")
        print(f"{f'this DAG load, {ROWS * 2:,} rows (x the month)':<46}"
              f"{spread([r['twice']['seconds'] for r in runs]):>15}{spread(ratio['twice']):>15}")
        typical = min(runs, key=lambda r: abs(r["fresh"]["seconds"] / r["bare"] - statistics.median(ratio["fresh"])))
        print_phases("fresh load of the median repeat", typical["fresh"])
        load, floor = typical["fresh"], typical["floor"]
        print(f"above the load's COPY alone ({floor:.2f} s): {load['seconds'] - floor:.2f} s "
              f"(the stream {load['phase_seconds']['stream'] - floor:+.2f} s, the rest is the other phases)")
        print_phases(f"load of {ROWS * 2:,} rows, same repeat", typical["twice"])
        rss = [r[step]["peak_rss_mb"] for r in runs for step in ("fresh", "twice")]
        print(f"peak RSS of the load process: {spread([r['fresh']['peak_rss_mb'] for r in runs])} MB (month), "
              f"{spread([r['twice']['peak_rss_mb'] for r in runs])} MB (twice as large)")
        summary = (f"load_ratio={statistics.median(ratio['fresh']):.2f} load_ratio_min={min(ratio['fresh']):.2f} "
                   f"copy_floor_ratio={statistics.median(ratio['floor']):.2f} "
                   f"rerun_ratio={statistics.median(ratio['rerun']):.2f} "
                   f"size_ratio={statistics.median(ratio['twice']):.2f} "
                   f"load_cpu_ratio={statistics.median(ratio['cpu']):.2f} peak_rss_mb={max(rss):.0f}")
        if full_month:
            summary += " " + full_month_figures(root, site, uri)
        print("DAG file parse time (warm process):")
        for name, seconds in parse_times().items():
            print(f"  {name:<42}{seconds:.3f} s")
        print(summary)


def full_month_figures(root: Path, site: Path, uri: str) -> str:
    """A month of yellow 2019-01's size against a bare COPY of its own CSV, once each."""
    gz = write_taxi_gz(site, "yellow", 2019, 1, FULL_MONTH_ROWS, sparse=True,
                       strays=realistic_strays(FULL_MONTH_ROWS))
    csv_path = gunzip(gz, root / "yellow_tripdata_2019-01.csv")
    print(f"full-size month: {FULL_MONTH_ROWS:,} rows, {csv_path.stat().st_size / 2**20:.0f} MiB uncompressed, "
          f"{gz.stat().st_size / 2**20:.0f} MiB gzipped")
    empty_tables(uri)
    with psycopg.connect(uri, autocommit=True) as conn:
        settle(uri)
        bare, _ = bare_copy(conn, csv_path)
    csv_path.unlink()
    with FileServer(site) as server:
        load = dag_load(uri, f"{server.url}/yellow/{gz.name}", "yellow_tripdata_2019-01.csv")
    assert load["rows_inserted"] == FULL_MONTH_ROWS, load
    print(f"full-size month: bare COPY {bare:.2f} s, this DAG's load {load['seconds']:.2f} s "
          f"({load['seconds'] / bare:.2f} x), peak RSS {load['peak_rss_mb']:.0f} MB")
    print_phases("full-size month", load)
    return f"full_month_load_ratio={load['seconds'] / bare:.2f} full_month_peak_rss_mb={load['peak_rss_mb']:.0f}"


if __name__ == "__main__":
    main()
