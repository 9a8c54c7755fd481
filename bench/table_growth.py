"""Does a month's load cost grow with the months already in the table? (flows 04/05)

Loads BENCH_GROWTH_MONTHS (default 34) generated yellow months of BENCH_GROWTH_ROWS rows (default
100 000) one after another into an empty table, each file with BENCH_STRAYS trips dated far from
its month (2008-12-31, 2009-01-01, 2088-01-24, the previous month's last hours), as real files
have them. Each load is timed in-process (verification, COPY, comparison, commit; no download),
after a CHECKPOINT. Prints every load's time, then the median of the loads made while the table held
1-3 months against the median of the last three (31-33 months); target: ratio <= 1.2.
Prints figures; asserts nothing but the row count. The last line is machine-readable.
"""
from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bench.services import bench_services, machine_line, settle
from include.zoomcamp.taxi import postgres
from include.zoomcamp.taxi.schemas import YELLOW
from include.zoomcamp.taxi.source import Download, TaxiMonth
from tests.fixtures.taxi import realistic_strays, write_taxi_gz

MONTHS = int(os.environ.get("BENCH_GROWTH_MONTHS", 34))
ROWS = int(os.environ.get("BENCH_GROWTH_ROWS", 100_000))
STRAYS = int(os.environ.get("BENCH_STRAYS", realistic_strays(ROWS)))


def months(count: int) -> list[TaxiMonth]:
    """`count` consecutive yellow months from 2019-01 (past 2021-07 when more are asked for)."""
    return [TaxiMonth("yellow", f"{2019 + i // 12}", f"{i % 12 + 1:02d}") for i in range(count)]


def local_download(path: Path) -> Download:
    data = path.read_bytes()
    return Download(path, hashlib.md5(data).hexdigest(), len(data))


def timed_load(uri: str, month: TaxiMonth, gz: Path, workdir: Path) -> float:
    settle(uri)
    with psycopg.connect(uri) as conn:
        start = time.perf_counter()
        report = postgres.load_month(conn, YELLOW, month.file_name, local_download(gz), workdir)
        seconds = time.perf_counter() - start
    assert report.rows_inserted == ROWS, report
    return seconds


def main() -> None:
    with bench_services() as (root, uri, _):
        print(machine_line())
        site = root / "site"
        files = [(m, write_taxi_gz(site, "yellow", int(m.year), int(m.month), ROWS, strays=STRAYS))
                 for m in months(MONTHS)]
        print(f"{MONTHS} yellow months of {ROWS:,} rows, {STRAYS} stray trips in each")
        seconds = []
        for held, (month, gz) in enumerate(files):
            with tempfile.TemporaryDirectory(dir=root) as workdir:
                seconds.append(timed_load(uri, month, gz, Path(workdir)))
            print(f"  table held {held:>2} months: loaded {month.file_name} in {seconds[-1]:.2f} s")
        with psycopg.connect(uri) as conn:
            total = conn.execute("SELECT count(*) FROM public.yellow_tripdata").fetchone()[0]
        assert total == MONTHS * ROWS, total
        early, late = statistics.median(seconds[1:4]), statistics.median(seconds[-3:])
        print(f"median load with 1-3 months in the table: {early:.2f} s; "
              f"with {MONTHS - 3}-{MONTHS - 1} months: {late:.2f} s")
        print(f"growth_ratio={late / early:.2f}")


if __name__ == "__main__":
    main()
