"""The course's unique_row_id computed beside the load, so a month reaches its table in one COPY.

The course computes `md5(coalesce(VendorID::text,'') || coalesce(<pickup>::text,'') || ...)` in
Postgres after loading, which means writing every row twice. Here one pass over the file does the
verification, the ids and the COPY at once:

- a worker thread decompresses the .gz and checks it (source.checked_csv_chunks: gzip stream,
  header, plain text, rows counted) and cuts it into Arrow arrays of whole lines without copying;
- DuckDB reads those arrays, checks each row's field count and computes its md5 from the field
  texts; its output batches go straight into the COPY, so memory is bounded by a few batches
  whatever the file size.

The COPY starts before the file has been read to its end: the load's transaction commits only
after `Annotation.finish` has confirmed that the whole file passed (see postgres.py).

The md5 covers the seven fields *as Postgres renders them*, so a field may only be used as it is
written when Postgres would render it identically:
- text columns (VendorID, location ids) are stored as written;
- timestamps written `YYYY-MM-DD HH:MM:SS` render the same under DateStyle ISO;
- amounts and distances written as plain decimals below 10^14 render as their shortest round-trip
  form, which DuckDB's double-to-text cast produces too (a whole number as its BIGINT), given
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

import fcntl
import os
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from include.zoomcamp.taxi.schemas import TaxiSchema
from include.zoomcamp.taxi.source import Download, FileTally, VerifiedFile, checked_csv_chunks

# The seven fields of the course's unique_row_id, in its order ({pickup}/{dropoff} per colour).
ROW_ID_FIELDS = ("VendorID", "{pickup}", "{dropoff}", "PULocationID", "DOLocationID", "fare_amount", "trip_distance")
FLOAT_FIELDS = ("fare_amount", "trip_distance")
# Spellings that Postgres renders back unchanged (floats: once DuckDB's ".0" is dropped). Below
# 10^14 so that no value rounds up to 10^15, where the two switch to exponent notation differently.
TIMESTAMP = r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
PLAIN_DECIMAL = r"-?0*\d{0,14}(?:\.\d*)?"
ANY_TEXT = "[^,]*"
# Rows per batch DuckDB hands back: a few MB at a time, whatever the file size.
BATCH_ROWS = 8_192
# Bytes the verification may be ahead of DuckDB by (where the pipe's size can be set).
PIPE_BYTES = 1 << 20
STREAMING_BUFFER = "64KB"
DUCKDB_SETTINGS = {"threads": 1, "memory_limit": "64MB", "preserve_insertion_order": False}

# What DuckDB says of each line (the `kind` column of annotate_query).
IN_MONTH, STRAY, LEFTOVER, WRONG_WIDTH = 0, 1, 2, 3


def row_id_field_names(schema: TaxiSchema) -> list[str]:
    return [f.format(pickup=schema.pickup, dropoff=schema.dropoff) for f in ROW_ID_FIELDS]


def _line_pattern(schema: TaxiSchema) -> str:
    """A regex for lines whose seven fields are all spelled as Postgres renders them."""
    kinds = {schema.pickup: f"(?:{TIMESTAMP})?", schema.dropoff: f"(?:{TIMESTAMP})?",
             **{name: f"(?:{PLAIN_DECIMAL})?" for name in FLOAT_FIELDS}}
    names = schema.column_names
    last = max(names.index(n) for n in row_id_field_names(schema))
    return "^" + ",".join(kinds.get(n, ANY_TEXT) for n in names[: last + 1]) + "(?:,|\n|$)"


def _rendered(expr: str, name: str) -> str:
    if name not in FLOAT_FIELDS:
        return expr
    # DuckDB writes a whole number as 8.0 where Postgres writes 8, so whole numbers go through BIGINT
    # (the line pattern keeps them below 10^14); zero keeps its sign, as Postgres's -0 does.
    value = f"CAST({expr} AS DOUBLE)"
    return (f"CASE WHEN {expr} = '' THEN '' WHEN {value} <> trunc({value}) THEN CAST({value} AS VARCHAR) "
            f"WHEN {value} <> 0 THEN CAST(CAST({value} AS BIGINT) AS VARCHAR) "
            f"WHEN starts_with({expr}, '-') THEN '-0' ELSE '0' END")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def copy_columns(schema: TaxiSchema) -> list[str]:
    """The columns of a COPY row as annotate_query writes it: the line's, then the id and the file name."""
    return [*schema.column_names, "unique_row_id", "filename"]


def annotate_query(schema: TaxiSchema, csv_path: str, file_name: str) -> str:
    """DuckDB SQL that reads the CSV at `csv_path` (a file or a pipe) line by line and annotates each line.

    Columns: kind (IN_MONTH, STRAY, LEFTOVER or WRONG_WIDTH) and row: `<line>,<unique_row_id>,<file name>`
    for rows in the month and strays, the line itself otherwise; newline included. (Literals
    rather than $n parameters: with parameters DuckDB buffers far more of the result.)
    """
    names = schema.column_names
    parts = [_rendered(f"f[{names.index(n) + 1}]", n) for n in row_id_field_names(schema)]
    pickup = f"f[{names.index(schema.pickup) + 1}]"
    month = schema.file_month(file_name)
    # A file named otherwise has no month to stray from.
    stray = f"left({pickup}, 7) <> {_literal(month)}" if month else "false"
    exact = f"regexp_matches(line, {_literal(_line_pattern(schema))})"
    return f"""
        SELECT CASE WHEN len(f) <> {len(names)} THEN {WRONG_WIDTH} WHEN NOT exact THEN {LEFTOVER}
                    WHEN {stray} THEN {STRAY} ELSE {IN_MONTH} END::UTINYINT AS kind,
               CASE WHEN exact AND len(f) = {len(names)}
                    THEN line || ',' || md5({' || '.join(parts)}) || {_literal(',' + file_name + chr(10))}
                    ELSE line || chr(10) END AS row
        FROM (SELECT line, string_split(line, ',') AS f, {exact} AS exact
              -- one column per line: 0x01, the delimiter, never occurs in a plain file (source.NOT_PLAIN)
              FROM read_csv({_literal(csv_path)}, columns = {{'line': 'VARCHAR'}}, delim = '\x01', quote = '',
                            escape = '', header = true, auto_detect = false, buffer_size = 1048576))
    """


class OnePassUnsuitable(Exception):
    """The file cannot be loaded in one pass (the message says why): it goes through staging."""


class AnnotationMismatch(OnePassUnsuitable):
    """DuckDB read a different number of rows than the verification counted."""


@dataclass
class AnnotationSummary:
    rows: int = 0  # every row DuckDB read
    rows_with_id: int = 0
    leftover_rows: int = 0
    stray_days: set[date | None] = field(default_factory=set)  # None: rows without a pickup
    # Where the pass's time went: the loader waiting for DuckDB's ids (its start included), and the
    # CPU time of the thread reading and checking the file (alongside, not in addition).
    seconds: dict[str, float] = field(default_factory=lambda: {"verify": 0.0, "ids": 0.0})


class _VerifyingPipe:
    """Decompresses and checks the file in a thread and writes it into a pipe that DuckDB reads.

    DuckDB thus reads exactly the bytes the verification passed, decompressed once. A failure of
    the verification does not go through DuckDB: the pipe just ends early and `error` holds it.
    The pipe's read end stays open here too, so a write never meets a closed pipe; a write that
    waits on a full pipe gives up once `close` is called.
    """

    def __init__(self, downloaded: Download, schema: TaxiSchema, file_name: str):
        self.tally, self.error, self.cpu_seconds, self.completed = FileTally(), None, 0.0, False
        self._chunks = checked_csv_chunks(downloaded, schema, file_name, self.tally)
        self._read_end, self._write_end = os.pipe()
        os.set_blocking(self._write_end, False)
        if hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux: fewer, larger reads for DuckDB
            with suppress(OSError):  # refused beyond the system's limits: the default size works too
                fcntl.fcntl(self._write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"verify-{file_name}", daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        """A path that opens the pipe's read end."""
        return f"/dev/fd/{self._read_end}"

    def _run(self) -> None:
        start = time.thread_time()
        try:
            for chunk in self._chunks:
                if not self.tally.plain:
                    return  # staging reads such a file; nothing more to do here
                self._write(chunk)
            self.completed = True
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the loader by `Annotation.finish`
            self.error = exc
        finally:
            os.close(self._write_end)  # DuckDB sees the end of the file
            self.cpu_seconds = time.thread_time() - start

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._stop.is_set():
                raise _Stopped
            try:
                view = view[os.write(self._write_end, view):]
            except BlockingIOError:
                select.select([], [self._write_end], [], 0.1)

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            os.close(self._read_end)


class _Stopped(Exception):
    pass


class Annotation:
    """One month's file being verified and annotated (see `annotation`)."""

    def __init__(self, pipe: _VerifyingPipe, rows, schema: TaxiSchema, strays_path: Path, leftover_path: Path,
                 start_seconds: float):
        self._pipe, self._rows, self._strays_path, self.leftover_path = pipe, rows, strays_path, leftover_path
        self._pickup_field = copy_columns(schema).index(schema.pickup)
        self.summary = AnnotationSummary()
        self.summary.seconds["ids"] = start_seconds

    def copy_rows(self) -> Iterator[bytes]:
        """COPY text rows (columns: `copy_columns`) as DuckDB computes them, the strays last.

        Raises OnePassUnsuitable as soon as a row has the wrong number of fields. Once exhausted,
        `leftover_path` holds the leftover lines; `finish` tells whether the file passed.
        """
        summary = self.summary
        with open(self._strays_path, "wb") as strays, open(self.leftover_path, "wb") as leftovers:
            while True:
                start = time.perf_counter()
                batch = next(self._rows, None)
                summary.seconds["ids"] += time.perf_counter() - start
                if batch is None:
                    break
                summary.rows += batch.num_rows
                yield from self._route(batch, strays, leftovers)
        yield from _file_chunks(self._strays_path)

    def _route(self, batch: pa.RecordBatch, strays, leftovers) -> Iterator[memoryview]:
        """The batch's rows in the month, in runs; strays and leftovers set aside."""
        kinds, rows = (_buffer(batch.column(0), 1, np.uint8), batch.column(1))
        offsets, text = _buffer(rows, 1, np.int32, extra=1), memoryview(rows.buffers()[2])
        run_start = 0
        for i in np.flatnonzero(kinds).tolist():
            if i > run_start:
                yield text[offsets[run_start]:offsets[i]]
            row, run_start = text[offsets[i]:offsets[i + 1]], i + 1
            if kinds[i] == WRONG_WIDTH:
                raise OnePassUnsuitable("a row has the wrong number of fields")
            if kinds[i] == STRAY:
                strays.write(row)
                self._add_stray_day(bytes(row))
            else:
                leftovers.write(row)
                self.summary.leftover_rows += 1
        if run_start < len(rows):
            yield text[offsets[run_start]:offsets[len(rows)]]

    def _add_stray_day(self, row: bytes) -> None:
        pickup = row.split(b",", self._pickup_field + 1)[self._pickup_field]
        try:
            self.summary.stray_days.add(date.fromisoformat(pickup[:10].decode()) if pickup else None)
        except ValueError:
            pass  # no such day (2019-02-30): Postgres rejects the row, and the load goes through staging

    def finish(self, file_name: str, downloaded: Download) -> VerifiedFile:
        """After `copy_rows`: the verified file, or the verification's error (TaxiFileError) raised.

        OnePassUnsuitable when the file is not plain text or DuckDB did not read every row.
        """
        self._pipe.close()
        self.summary.seconds["verify"] = self._pipe.cpu_seconds
        if self._pipe.error is not None:
            raise self._pipe.error
        csv = self._pipe.tally.verified(downloaded, file_name)
        if not csv.plain:
            raise OnePassUnsuitable("the file has quoted fields, backslashes or carriage returns")
        if not self._pipe.completed:
            raise AnnotationMismatch("DuckDB stopped reading before the end of the file")
        if self.summary.rows != csv.rows:  # never seen; a guard against losing rows
            raise AnnotationMismatch(f"DuckDB read {self.summary.rows} rows, the verification counted {csv.rows}")
        self.summary.rows_with_id = self.summary.rows - self.summary.leftover_rows
        return csv


def _buffer(array: pa.Array, index: int, dtype, extra: int = 0) -> np.ndarray:
    """An Arrow buffer of fixed-width values as numpy, without copying. (Array.to_numpy would do,
    but its first call costs some 50 MB of resident memory.)"""
    return np.frombuffer(array.buffers()[index], dtype=dtype, count=len(array) + extra,
                         offset=np.dtype(dtype).itemsize * array.offset)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as src:
        while chunk := src.read(1 << 20):
            yield chunk


@contextmanager
def annotation(downloaded: Download, schema: TaxiSchema, file_name: str, workdir: Path):
    """Start verifying `downloaded` in a thread and computing its ids in DuckDB; yield an Annotation.

    Strays and leftovers wait in files in `workdir`. Leaving the block stops the thread and
    removes the files.
    """
    strays_path, leftover_path = workdir / f"{file_name}.strays", workdir / f"{file_name}.leftover"
    pipe = _VerifyingPipe(downloaded, schema, file_name)
    try:
        config = {**DUCKDB_SETTINGS, "temp_directory": str(workdir)}  # should it ever spill
        start = time.perf_counter()
        with duckdb.connect(config=config) as con:
            # What a streaming result computes ahead of its reader: the COPY reads as fast as
            # Postgres takes rows anyway; the default (about 1 MB) costs some 15 MB more memory.
            con.execute(f"SET streaming_buffer_size = '{STREAMING_BUFFER}'")
            rows = iter(con.execute(annotate_query(schema, pipe.path, file_name)).to_arrow_reader(BATCH_ROWS))
            yield Annotation(pipe, rows, schema, strays_path, leftover_path, time.perf_counter() - start)
    finally:
        pipe.close()
        for path in (strays_path, leftover_path):
            path.unlink(missing_ok=True)
