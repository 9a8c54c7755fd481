"""Flows 04/05: the comparison with existing ids stays cheap as the table fills, stray dates included.

Real files hold trips dated far from their month (2008-12-31, 2088-01-24, the previous month's last
hours). These tests load several such months and check what keeps each load's cost independent of
the months already in the table: strays are written after the file's other rows, the pickup index
still prunes block ranges for stray days and in-month days, and the plans of the comparison are
BRIN scans and hash joins (no whole-table scan, no nested loop over the file's rows).
"""
from __future__ import annotations

import json

import psycopg
import pytest

from include.zoomcamp.taxi.postgres import load_month, summarize_new_ranges
from include.zoomcamp.taxi.schemas import YELLOW
from tests.fixtures.taxi import downloaded_gz, taxi_csv_lines

ROWS = 40_000
STRAYS = 10
MONTHS = [f"2016-{m:02d}" for m in range(1, 7)]
SHARED = 500  # rows of the last month's file that the next file repeats


def _file_name(month: str) -> str:
    return f"yellow_tripdata_{month}.csv"


def _lines(month: str) -> list[str]:
    year, mm = month.split("-")
    return list(taxi_csv_lines("yellow", int(year), int(mm), ROWS, strays=STRAYS))


@pytest.fixture(scope="module")
def months_loaded(pg_uri, tmp_path_factory):
    """Six months of 40 000 rows (10 strays each) loaded one after another into a fresh table."""
    tmp = tmp_path_factory.mktemp("months")
    with psycopg.connect(pg_uri, autocommit=True) as pg:
        pg.execute("DROP TABLE IF EXISTS public.yellow_tripdata, public.zoomcamp_loads")
    for month in MONTHS:
        name = _file_name(month)
        with psycopg.connect(pg_uri) as conn:
            load_month(conn, YELLOW, name, downloaded_gz(tmp, name, "\n".join(_lines(month)) + "\n"), tmp)
    return tmp


def _blocks_read(pg, condition: str) -> int:
    """Heap blocks a BRIN bitmap scan of the final table reads for `condition` on the pickup."""
    with pg.transaction():
        pg.execute("SET LOCAL enable_seqscan = off")
        pg.execute("SET LOCAL max_parallel_workers_per_gather = 0")  # one process: its counts are all
        plan = pg.execute("EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM public.yellow_tripdata "
                          f"WHERE {condition}").fetchone()[0][0]["Plan"]
    scans = list(_nodes(plan, "Bitmap Heap Scan"))
    assert scans, plan
    return sum(n.get("Exact Heap Blocks", 0) + n.get("Lossy Heap Blocks", 0) for n in scans)


def _nodes(plan: dict, node_type: str):
    if plan["Node Type"] == node_type:
        yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child, node_type)


def test_strays_are_written_after_the_rest_of_their_file(months_loaded, pg):
    for month in MONTHS:
        in_month_last, stray_first, strays = pg.execute(
            "SELECT max(ctid) FILTER (WHERE to_char(tpep_pickup_datetime, 'YYYY-MM') = %s), "
            "min(ctid) FILTER (WHERE to_char(tpep_pickup_datetime, 'YYYY-MM') IS DISTINCT FROM %s), "
            "count(*) FILTER (WHERE to_char(tpep_pickup_datetime, 'YYYY-MM') IS DISTINCT FROM %s) "
            "FROM public.yellow_tripdata WHERE filename = %s", (month, month, month, _file_name(month))).fetchone()
        assert strays == STRAYS
        assert _tid(in_month_last) < _tid(stray_first), month


def _tid(text: str) -> tuple[int, int]:
    block, item = text.strip("()").split(",")
    return int(block), int(item)


def test_the_pickup_index_prunes_stray_days_and_months(months_loaded, pg):
    summarize_new_ranges(pg, YELLOW)  # what the next load does first (the last month's ranges)
    pages = pg.execute("SELECT pg_relation_size('public.yellow_tripdata') / 8192").fetchone()[0]
    far_days = ("(tpep_pickup_datetime >= '2088-01-24' AND tpep_pickup_datetime < '2088-01-25') OR "
                "(tpep_pickup_datetime >= '2008-12-31' AND tpep_pickup_datetime < '2009-01-02')")
    one_day = "tpep_pickup_datetime >= '2016-03-10' AND tpep_pickup_datetime < '2016-03-11'"
    # Every file has strays on those days: only the block ranges at the end of each file are read.
    assert _blocks_read(pg, far_days) < pages / 3, pages
    # A day of March: March's block ranges (and the stray ranges at most), not the other months.
    assert _blocks_read(pg, one_day) < pages / 3, pages


def test_the_comparison_uses_brin_scans_and_hash_joins(months_loaded, pg_uri):
    """Load a month that repeats rows of the previous one, with every plan of the load recorded."""
    last = _lines(MONTHS[-1])
    lines = _lines("2016-07") + last[-SHARED:]
    name = _file_name("2016-07")
    downloaded = downloaded_gz(months_loaded, name, "\n".join(lines) + "\n")
    plans: list[dict] = []

    def record(notice):
        text = notice.message_primary
        if "plan:" in text:
            plans.append(json.loads(text.split("plan:", 1)[1])["Plan"])

    with psycopg.connect(pg_uri) as conn:
        conn.add_notice_handler(record)
        for statement in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                          "SET auto_explain.log_format = json", "SET auto_explain.log_level = notice"):
            conn.execute(statement)
        conn.commit()
        report = load_month(conn, YELLOW, name, downloaded, months_loaded)
    assert report.rows_inserted == ROWS  # the repeated rows were found and taken back

    on_final = [p for p in plans if any(n.get("Relation Name") == "yellow_tripdata" for n in _all_nodes(p))]
    assert any(p.get("Operation") == "Delete" for p in on_final), plans  # the repeated rows were compared
    for plan in on_final:
        types = {n["Node Type"] for n in _all_nodes(plan)}
        assert "Nested Loop" not in types and "Merge Join" not in types, plan
        seq_scans = [n for n in _all_nodes(plan) if n["Node Type"] == "Seq Scan"]
        assert all(n["Relation Name"] != "yellow_tripdata" for n in seq_scans), plan


def _all_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _all_nodes(child)
