"""The course's unique_row_id computed beside the load, so a month reaches its table in one COPY.

The course computes `md5(coalesce(VendorID::text,'') || coalesce(<pickup>::text,'') || ...)` in
Postgres after loading, which means writing every row twice. Here DuckDB computes the same md5 from
the CSV text in a worker thread and appends it (and the file name) to each line; its output goes
through a spool file, so it can start while the file is being verified and the COPY can stream it
as it grows, with memory bounded by a batch whatever the file size.

The md5 covers the seven fields *as Postgres renders them*, so a field may only be used as it is
written when Postgres would render it identically:
- text columns (VendorID, location ids) are stored as written;
- timestamps written `YYYY-MM-DD HH:MM:SS` render the same under DateStyle ISO;
- amounts and distances written as plain decimals below 10^14 render as their shortest round-trip
  form, which DuckDB's double-to-text cast produces too (minus its trailing ".0"), given
  extra_float_digits >= 1 (the default, and what Kestra's JDBC driver sets).
A line with any other spelling (`7:05`, `1e3`, ` 2.5`, ...) is set aside as a leftover; the loader
gives those to Postgres to hash, as the course does. tests/test_row_ids.py checks the rendering
against Postgres value by value.

Strays — trips whose pickup is not in the file's month (real files hold a few, dated 2008, 2088 or
the previous month's last hours) or is empty — are held back and streamed after all the other
rows, so they end up together in the last pages the load writes instead of in every block range
of the month, where they would stop the pickup index from telling months apart.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.compute as pc

from include.zoomcamp.taxi.schemas import TaxiSchema

# The seven fields of the course's unique_row_id, in its order ({pickup}/{dropoff} per colour).
ROW_ID_FIELDS = ("VendorID", "{pickup}", "{dropoff}", "PULocationID", "DOLocationID", "fare_amount", "trip_distance")
FLOAT_FIELDS = ("fare_amount", "trip_distance")
# Spellings that Postgres renders back unchanged (floats: once DuckDB's ".0" is dropped). Below
# 10^14 so that no value rounds up to 10^15, where the two switch to exponent notation differently.
TIMESTAMP = r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
PLAIN_DECIMAL = r"-?0*\d{0,14}(?:\.\d*)?"
ANY_TEXT = "[^,]*"
# Rows per Arrow batch: a few MB at a time, whatever the file size.
BATCH_ROWS = 16_384
DUCKDB_SETTINGS = {"threads": 1, "memory_limit": "96MB", "preserve_insertion_order": False}


def row_id_field_names(schema: TaxiSchema) -> list[str]:
    return [f.format(pickup=schema.pickup, dropoff=schema.dropoff) for f in ROW_ID_FIELDS]


def _line_pattern(schema: TaxiSchema) -> str:
    """A regex for lines whose seven fields are all spelled as Postgres renders them."""
    kinds = {schema.pickup: f"(?:{TIMESTAMP})?", schema.dropoff: f"(?:{TIMESTAMP})?",
             **{name: f"(?:{PLAIN_DECIMAL})?" for name in FLOAT_FIELDS}}
    names = schema.column_names
    last = max(names.index(n) for n in row_id_field_names(schema))
    return "^" + ",".join(kinds.get(n, ANY_TEXT) for n in names[: last + 1]) + "(?:,|$)"


def _rendered(expr: str, name: str) -> str:
    if name not in FLOAT_FIELDS:
        return expr
    # DuckDB writes 8.0 where Postgres writes 8; '#' marks the end so only a final ".0" goes.
    text = f"CAST(CAST({expr} AS DOUBLE) AS VARCHAR) || '#'"
    return f"CASE WHEN {expr} = '' THEN '' ELSE replace(replace({text}, '.0#', ''), '#', '') END"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def annotate_query(schema: TaxiSchema, csv_path: Path, file_name: str) -> str:
    """DuckDB SQL that reads `csv_path` (a CSV, gzipped or not) line by line and annotates each line.

    (Literals rather than $n parameters: with parameters DuckDB buffers far more of the result.)

    Columns: copy_row (`<line>,<unique_row_id>,<file name>\\n`, NULL for a leftover or a stray),
    stray_row (the same for a stray, else NULL), leftover (`<line>\\n` or NULL) and pickup_day (the
    pickup's date text, '' when empty, NULL for a leftover).
    """
    names = schema.column_names
    parts = [_rendered(f"f[{names.index(n) + 1}]", n) for n in row_id_field_names(schema)]
    pickup = f"f[{names.index(schema.pickup) + 1}]"
    month = schema.file_month(file_name)
    # A file named otherwise has no month to stray from.
    stray = f"left({pickup}, 7) <> {_literal(month)}" if month else "false"
    return f"""
        WITH lines AS (
            -- one column per line: 0x01, the delimiter, never occurs in a plain file (source.NOT_PLAIN)
            SELECT line, string_split(line, ',') AS f, regexp_matches(line, '{_line_pattern(schema)}') AS exact
            FROM read_csv({_literal(str(csv_path))}, columns = {{'line': 'VARCHAR'}},
                          delim = '\x01', quote = '', escape = '',
                          header = true, auto_detect = false, buffer_size = 2097152)
        ), annotated AS (
            SELECT CASE WHEN exact
                        THEN line || ',' || md5({' || '.join(parts)}) || {_literal(',' + file_name + chr(10))}
                   END AS row,
                   exact AND {stray} AS stray, line, exact, {pickup} AS pickup
            FROM lines
        )
        SELECT CASE WHEN NOT stray THEN row END AS copy_row,
               CASE WHEN stray THEN row END AS stray_row,
               CASE WHEN NOT exact THEN line || chr(10) END AS leftover,
               CASE WHEN exact THEN left(pickup, 10) END AS pickup_day
        FROM annotated
    """


class AnnotationMismatch(Exception):
    """DuckDB read a different number of rows than the verification counted."""


@dataclass
class AnnotationSummary:
    rows_with_id: int = 0
    leftover_rows: int = 0
    pickup_days: set[str | None] = field(default_factory=set)  # '': rows without a pickup; None: leftovers


def _arrow_text(column) -> memoryview:
    """The concatenated values of a null-free Arrow string column, without copying them."""
    offsets = memoryview(column.buffers()[1]).cast("i")
    start, end = offsets[column.offset], offsets[column.offset + len(column)]
    return memoryview(column.buffers()[2])[start:end]


class _Spool:
    """A file one thread appends to while another streams it from the start: a pipe through disk.

    The writer may run ahead of the reader by any amount without holding it in memory.
    """

    def __init__(self, path: Path):
        self._out, self._in = open(path, "wb"), open(path, "rb")
        self._progress = threading.Condition()
        self._written, self._finished, self._error = 0, False, None

    def write(self, data) -> None:
        self._out.write(data)
        self._out.flush()
        with self._progress:
            self._written += len(data)
            self._progress.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        with self._progress:
            self._finished, self._error = True, error
            self._progress.notify_all()

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """Everything written, as it is written; raises what the writer failed with."""
        position = 0
        while True:
            with self._progress:
                self._progress.wait_for(lambda: self._written > position or self._finished)
                if self._error is not None:
                    raise self._error
                available, finished = self._written - position, self._finished
            if not available and finished:
                return
            data = self._in.read(min(available, size))
            position += len(data)
            yield data

    def close(self) -> None:
        self._out.close()
        self._in.close()


class Annotation:
    """Ids being computed for one month's file by a worker thread (see `annotation`)."""

    def __init__(self, spool: _Spool, strays_path: Path, leftover_path: Path, summary: AnnotationSummary):
        self._spool, self._strays_path, self.leftover_path, self.summary = spool, strays_path, leftover_path, summary

    def copy_rows(self) -> Iterator[bytes]:
        """COPY text rows (`<line>,<unique_row_id>,<file name>`), streamed as they are computed,
        the strays last.

        Once exhausted, `summary` is complete and `leftover_path` holds the leftover lines.
        """
        yield from self._spool.chunks()
        with open(self._strays_path, "rb") as strays:
            while chunk := strays.read(1 << 20):
                yield chunk


@contextmanager
def annotation(gz_path: Path, schema: TaxiSchema, file_name: str, workdir: Path):
    """Start computing the ids of the rows of `gz_path` in a worker thread; yield an Annotation.

    The worker writes ahead into a spool file in `workdir`, so it can start while the file is still
    being verified and keep running while the COPY consumes its output. Leaving the block stops it
    and removes its files.
    """
    spool_path, leftover_path = workdir / f"{file_name}.ids", workdir / f"{file_name}.leftover"
    strays_path = workdir / f"{file_name}.strays"
    spool, summary, stop = _Spool(spool_path), AnnotationSummary(), threading.Event()

    def set_aside(column, out) -> int:
        column = column.drop_null()
        out.write(_arrow_text(column))
        return len(column)

    def work() -> None:
        try:
            config = {**DUCKDB_SETTINGS, "temp_directory": str(workdir)}  # should it ever spill
            with (duckdb.connect(config=config) as con, open(leftover_path, "wb") as leftovers,
                  open(strays_path, "wb") as strays):
                for batch in con.execute(annotate_query(schema, gz_path, file_name)).to_arrow_reader(BATCH_ROWS):
                    if stop.is_set():
                        break
                    rows, stray_rows, leftover, days = (batch.column(i) for i in range(4))
                    if rows.null_count:
                        summary.leftover_rows += set_aside(leftover, leftovers)
                        summary.rows_with_id += set_aside(stray_rows, strays)
                        rows = rows.drop_null()
                    summary.pickup_days.update(pc.unique(days).to_pylist())
                    summary.rows_with_id += len(rows)
                    spool.write(_arrow_text(rows))
            spool.finish()
        except BaseException as exc:  # raised in the reader
            spool.finish(exc)

    worker = threading.Thread(target=work, name=f"row-ids-{file_name}", daemon=True)
    worker.start()
    try:
        yield Annotation(spool, strays_path, leftover_path, summary)
    finally:
        stop.set()
        worker.join()
        spool.close()
        for path in (spool_path, strays_path, leftover_path):
            path.unlink(missing_ok=True)
