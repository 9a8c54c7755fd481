"""The course's unique_row_id computed beside the load, so a month reaches its table in one COPY.

The course computes `md5(coalesce(VendorID::text,'') || coalesce(<pickup>::text,'') || ...)` in
Postgres after loading, which means writing every row twice. Here DuckDB computes the same md5 from
the CSV text while the COPY streams, and appends it (and the file name) to each line.

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
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from include.zoomcamp.taxi.schemas import TaxiSchema

# The seven fields of the course's unique_row_id, in its order ({pickup}/{dropoff} per colour).
ROW_ID_FIELDS = ("VendorID", "{pickup}", "{dropoff}", "PULocationID", "DOLocationID", "fare_amount", "trip_distance")
TIMESTAMP = r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
PLAIN_DECIMAL = r"-?0*\d{0,14}(?:\.\d*)?"
ANY_TEXT = "[^,]*"
# Rows per Arrow batch and batches in flight: a few MB at a time, whatever the file size.
BATCH_ROWS = 16_384
BATCHES_AHEAD = 4
DUCKDB_SETTINGS = {"threads": 1, "memory_limit": "96MB", "preserve_insertion_order": False}


def row_id_field_names(schema: TaxiSchema) -> list[str]:
    return [f.format(pickup=schema.pickup, dropoff=schema.dropoff) for f in ROW_ID_FIELDS]


def _line_pattern(schema: TaxiSchema) -> str:
    """A regex for lines whose seven fields are all spelled as Postgres renders them."""
    kinds = {schema.pickup: f"(?:{TIMESTAMP})?", schema.dropoff: f"(?:{TIMESTAMP})?",
             "fare_amount": f"(?:{PLAIN_DECIMAL})?", "trip_distance": f"(?:{PLAIN_DECIMAL})?"}
    names = schema.column_names
    last = max(names.index(n) for n in row_id_field_names(schema))
    return "^" + ",".join(kinds.get(n, ANY_TEXT) for n in names[: last + 1]) + "(?:,|$)"


def _rendered(expr: str, kind: str) -> str:
    if kind != "float":
        return expr
    # DuckDB writes 8.0 where Postgres writes 8; '#' marks the end so only a final ".0" goes.
    text = f"CAST(CAST({expr} AS DOUBLE) AS VARCHAR) || '#'"
    return f"CASE WHEN {expr} = '' THEN '' ELSE replace(replace({text}, '.0#', ''), '#', '') END"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def annotate_query(schema: TaxiSchema, csv_path: Path, file_name: str) -> str:
    """DuckDB SQL that reads `csv_path` line by line and annotates each line for `file_name`.

    (Literals rather than $n parameters: with parameters DuckDB buffers far more of the result.)

    Columns: copy_row (`<line>,<unique_row_id>,<file name>\\n`, NULL for a leftover), leftover
    (`<line>\\n` or NULL) and pickup_day (the pickup's date text, '' when empty, NULL for a leftover).
    """
    names = schema.column_names
    kinds = {"fare_amount": "float", "trip_distance": "float"}
    parts = [_rendered(f"f[{names.index(n) + 1}]", kinds.get(n, "text")) for n in row_id_field_names(schema)]
    pickup = f"f[{names.index(schema.pickup) + 1}]"
    return f"""
        WITH lines AS (
            SELECT line, string_split(line, ',') AS f, regexp_matches(line, '{_line_pattern(schema)}') AS exact
            FROM read_csv({_literal(str(csv_path))}, columns = {{'line': 'VARCHAR'}}, delim = '\x01', quote = '', escape = '',
                          header = true, auto_detect = false, buffer_size = 2097152)
        )
        SELECT CASE WHEN exact THEN line || ',' || md5({' || '.join(parts)}) || {_literal(',' + file_name + chr(10))} END AS copy_row,
               CASE WHEN NOT exact THEN line || chr(10) END AS leftover,
               CASE WHEN exact THEN left({pickup}, 10) END AS pickup_day
        FROM lines
    """


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


@contextmanager
def annotated_rows(csv_path: Path, schema: TaxiSchema, file_name: str, leftover_path: Path):
    """Yield (batches, summary): an iterator of COPY text buffers, and the summary it fills.

    DuckDB runs in a worker thread a few batches ahead of the consumer (the COPY), so computing
    ids and loading rows use both cores. Leftover lines are written to `leftover_path`.
    """
    summary = AnnotationSummary()

    def produce(put: Callable[[object], None]) -> None:
        with duckdb.connect(config=DUCKDB_SETTINGS) as con, open(leftover_path, "wb") as leftovers:
            reader = con.execute(annotate_query(schema, csv_path, file_name)).to_arrow_reader(BATCH_ROWS)
            for batch in reader:
                rows, days, left = batch.column(0), batch.column(2), batch.column(1)
                if rows.null_count:
                    left = left.drop_null()
                    leftovers.write(_arrow_text(left))
                    summary.leftover_rows += len(left)
                    rows = rows.drop_null()
                summary.pickup_days.update(days.to_pylist())
                summary.rows_with_id += len(rows)
                put((batch, _arrow_text(rows)))  # the batch keeps the buffer alive

    with _produced_in_background(produce, BATCHES_AHEAD) as items:
        yield (view for _, view in items), summary


class _Stopped(Exception):
    pass


@contextmanager
def _produced_in_background(produce: Callable[[Callable[[object], None]], None], depth: int):
    """Run `produce(put)` in a thread; yield an iterator over what it puts, at most `depth` ahead.

    An exception in the producer is raised in the consumer; leaving the block early stops the producer.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done, failed = object(), object()

    def put(item) -> None:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def run() -> None:
        try:
            produce(put)
            put((done, None))
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the consumer, which raises it
            try:
                put((failed, exc))
            except _Stopped:
                pass

    def consume() -> Iterator[object]:
        while True:
            item = items.get()
            if isinstance(item, tuple) and item[0] is done:
                return
            if isinstance(item, tuple) and item[0] is failed:
                raise item[1]
            yield item

    worker = threading.Thread(target=run, name="row-ids", daemon=True)
    worker.start()
    try:
        yield consume()
    finally:
        stop.set()
        worker.join()
