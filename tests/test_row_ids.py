"""unique_row_id computed beside the COPY must equal Postgres's own md5 over the rendered fields.

Each test loads rows through the real loader into the embedded Postgres, then recomputes every
row's id in Postgres (the course's expression) and compares.
"""
from __future__ import annotations

import random

import psycopg
import pytest
from psycopg import sql

from include.zoomcamp.taxi import postgres, row_ids
from include.zoomcamp.taxi.schemas import GREEN, YELLOW
from include.zoomcamp.taxi.source import TaxiFileError, verify_gz_file
from tests.fixtures.taxi import downloaded_gz, taxi_csv_lines

# Spellings Postgres accepts but renders differently: their rows must be hashed by Postgres.
RESPELLED_TIMES = ("2019-01-05 7:05:03", "2019/01/05 07:05:03", "2019-01-05 24:00:00", "2019-01-05T07:05:03")
RESPELLED_AMOUNTS = ("1e3", " 2.5", "+3", "1234567890123456", "123456789012345.5", "NaN", "-Infinity")


def _amounts(rng: random.Random, n: int) -> list[str]:
    """Plain decimals of every shape the rendering rule covers: digits 1-17, signs, zeros, '.5', '5.'."""
    values = ["0", "-0", "0.0", "-0.00", ".5", "5.", "007.50", ".73", "1.50", "99999999999999.9",
              "0.0001", "0.00001234", "-0.000001", "12345678901234"]
    while len(values) < n:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 17)))
        point = rng.randint(0, len(digits))
        text = digits[:point] + "." + digits[point:] if rng.random() < 0.8 else digits
        if len(text.split(".")[0].lstrip("0")) > 14 or text == ".":
            continue
        values.append(("-" if rng.random() < 0.2 else "") + text)
    return values


def _rows_with(schema, values: dict[str, list[str]], seed: int = 3) -> str:
    """A CSV whose rows take the given values, column by column, in turn."""
    header, *rows = taxi_csv_lines(schema.taxi, 2017, 3, max(len(v) for v in values.values()), seed=seed)
    out = []
    for i, line in enumerate(rows):
        fields = line.split(",")
        for column, column_values in values.items():
            fields[schema.column_names.index(column)] = column_values[i % len(column_values)]
        out.append(",".join(fields))
    return "\n".join([header, *out]) + "\n"


def _mismatched_ids(conn, schema, file_name: str) -> tuple[int, int]:
    return conn.execute(sql.SQL(
        "SELECT count(*), count(*) FILTER (WHERE unique_row_id IS DISTINCT FROM {}) "
        "FROM {} WHERE filename = %s").format(
        postgres.row_id_expression(schema), postgres.final_table(schema)), (file_name,)).fetchone()


@pytest.fixture
def clean(pg):
    pg.execute("DROP TABLE IF EXISTS public.yellow_tripdata, public.green_tripdata, public.zoomcamp_loads")


@pytest.mark.parametrize("schema", [YELLOW, GREEN], ids=["yellow", "green"])
def test_ids_equal_postgres_md5_for_every_spelling(clean, pg_uri, tmp_path, schema):
    rng = random.Random(schema.taxi)
    amounts = _amounts(rng, 3000)
    text = _rows_with(schema, {
        "fare_amount": amounts + list(RESPELLED_AMOUNTS),
        "trip_distance": list(reversed(amounts)) + [""] * 5,
        schema.pickup: ["2017-03-02 10:00:00", ""] * 200 + list(RESPELLED_TIMES),
    })
    file_name = schema.file_name("2017", "03")
    downloaded = downloaded_gz(tmp_path, file_name, text)
    rows = text.count("\n") - 1

    with row_ids.annotation(downloaded, schema, file_name, tmp_path) as ids:
        copied = b"".join(ids.copy_rows())
        assert ids.finish(file_name, downloaded).rows == rows
        summary = ids.summary
    # Exactly the rows with a respelled value are left to Postgres.
    respelled = sum(1 for line in text.splitlines()[1:]
                    if set(line.split(",")) & set(RESPELLED_TIMES + RESPELLED_AMOUNTS))
    assert summary.leftover_rows == respelled > 0
    assert summary.rows_with_id == rows - respelled == copied.count(b"\n")

    with psycopg.connect(pg_uri) as conn:
        report = postgres.load_month(conn, schema, file_name, downloaded, tmp_path)
        assert report.rows_inserted == rows
        assert _mismatched_ids(conn, schema, file_name) == (rows, 0)
    # One pass (Postgres hashed only the leftovers); the report says where the time went.
    assert list(report.phase_seconds) == ["prepare", "stream", "stream.ids", "stream.copy", "stream.verify_cpu",
                                          "leftovers", "compare", "commit"]
    assert report.phase_seconds["stream"] == pytest.approx(
        report.phase_seconds["stream.ids"] + report.phase_seconds["stream.copy"])


def test_a_value_postgres_rejects_is_reported_with_its_line(clean, pg_uri, tmp_path):
    """A well-formed but impossible date passes the text checks; Postgres rejects it, and the
    message names the line as in the file, with nothing loaded."""
    lines = list(taxi_csv_lines("yellow", 2017, 3, 100))
    fields = lines[41].split(",")
    fields[1] = "2017-02-30 10:00:00"
    lines[41] = ",".join(fields)
    name = "yellow_tripdata_2017-03.csv"
    downloaded = downloaded_gz(tmp_path, name, "\n".join(lines) + "\n")
    out_of_range = r"line 42: date/time field value out of range"
    with psycopg.connect(pg_uri) as conn, pytest.raises(TaxiFileError, match=out_of_range):
        postgres.load_month(conn, YELLOW, name, downloaded, tmp_path)
    with psycopg.connect(pg_uri) as conn:
        assert conn.execute("SELECT count(*) FROM public.yellow_tripdata").fetchone()[0] == 0


def test_quoted_fields_go_through_staging_with_the_same_ids(clean, pg_uri, tmp_path):
    header, *rows = taxi_csv_lines("yellow", 2017, 4, 500, seed=5)
    rows = [line.replace(",N,", ',"N",') for line in rows]
    name = "yellow_tripdata_2017-04.csv"
    downloaded = downloaded_gz(tmp_path, name, "\n".join([header, *rows]) + "\n")
    assert not verify_gz_file(downloaded, YELLOW, name).plain
    with psycopg.connect(pg_uri) as conn:
        assert postgres.load_month(conn, YELLOW, name, downloaded, tmp_path).rows_inserted == 500
        assert _mismatched_ids(conn, YELLOW, name) == (500, 0)


def test_a_server_rendering_dates_otherwise_is_not_second_guessed(clean, pg_uri, tmp_path):
    text = "\n".join(taxi_csv_lines("yellow", 2017, 5, 50)) + "\n"
    name = "yellow_tripdata_2017-05.csv"
    downloaded = downloaded_gz(tmp_path, name, text)
    with psycopg.connect(pg_uri, options="-c DateStyle=SQL,DMY") as conn:
        postgres.ensure_tables(conn, YELLOW)
        assert "DateStyle SQL, DMY" in postgres._why_not_one_pass(conn, YELLOW, name)
        conn.rollback()
        assert postgres.load_month(conn, YELLOW, name, downloaded, tmp_path).rows_inserted == 50
        assert _mismatched_ids(conn, YELLOW, name) == (50, 0)


def test_rows_duckdb_missed_are_not_lost(clean, pg_uri, tmp_path, monkeypatch):
    """Should DuckDB ever read fewer rows than verification counted, the load falls back to staging."""
    query = row_ids.annotate_query
    monkeypatch.setattr(row_ids, "annotate_query", lambda *args: query(*args).rstrip() + " LIMIT 10")
    name = "yellow_tripdata_2017-06.csv"
    downloaded = downloaded_gz(tmp_path, name, "\n".join(taxi_csv_lines("yellow", 2017, 6, 50)) + "\n")
    with psycopg.connect(pg_uri) as conn:
        assert postgres.load_month(conn, YELLOW, name, downloaded, tmp_path).rows_inserted == 50
        assert _mismatched_ids(conn, YELLOW, name) == (50, 0)
