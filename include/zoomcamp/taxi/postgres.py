"""Verify one downloaded month and load it into the course's Postgres table, once, atomically.

The course's SQL sequence is: COPY into a shared staging table, UPDATE every staging row with its
unique_row_id and filename, MERGE the new ids into the final table; every row is written twice.
Here the same result comes, in one transaction per month that commits only once the whole file
has passed verification, from one of two paths:

- one pass (a month loaded for the first time, the usual case): the file is decompressed and
  verified once, DuckDB computes each row's unique_row_id from the CSV text as it goes by (see
  row_ids.py), and the rows go straight into the final table while the rest of the file is still
  being read; then, under a per-table advisory lock, rows of this transaction whose id the table
  already held are deleted again (usually none: only rows shared with another month's file);
- through staging (the file's rows are partly there already, the file is not plain text, or a
  value is rejected, which this path reports with its line): the file is verified first
  (source.verify_gz_file), COPYed into a temporary staging table, then, under the lock, one
  INSERT ... SELECT computes the ids in Postgres and inserts only those not already present.

Either way the final table either gets the month or stays as it was (a killed run rolls back), and
`zoomcamp_loads` records the file's checksum so a rerun of an unchanged file that is still fully in
the table is recognised (`unchanged_load`) without even decompressing it.

Which rows can hold a new row's id: equal ids come from equal field texts, so such a row has the
same pickup time; the rows to compare with are the ones on the file's pickup days (plus rows without
a pickup): its month, the strays' days and the leftovers' days. A BRIN index on the pickup column
finds them without reading other months, where a btree on unique_row_id would cost a random
insertion per row into an index as large as the whole table.
Real files hold a few trips dated years away from their month (2008-12-31, 2088-01-24...); with a
plain minmax BRIN one such row makes its block range match every date, so once strays are spread
through the table every comparison reads all of it. The index uses the minmax-multi operator class,
which keeps several intervals per block range: a stray is a point of its own and the range still
matches only its month and that point. Each load first summarises the ranges earlier loads wrote,
so its comparison skips them (autovacuum would do it up to a minute later).

The final table's statistics lag behind loads that just added months, and with them the planner
goes wrong both ways: it estimates that a BRIN scan is not worth it and reads the whole table, or
it joins the file's rows with the ids found by a nested loop that rescans those ids for every row
(quadratic). The loader's queries on the final table are only sensible as BRIN scans and hash
joins, so `_plan_with_brin_and_hashes` turns sequential scans of it, nested loops and merge joins
off for them.
"""
from __future__ import annotations

import calendar
import logging
import time as clock
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb
import psycopg
from psycopg import sql

from include.zoomcamp.taxi.row_ids import (
    Annotation,
    OnePassUnsuitable,
    annotation,
    copy_columns,
    row_id_field_names,
)
from include.zoomcamp.taxi.schemas import TaxiSchema
from include.zoomcamp.taxi.source import Download, TaxiFileError, VerifiedFile, describe_copy_error, verify_gz_file

log = logging.getLogger(__name__)

SCHEMA = "public"
LEDGER = sql.Identifier(SCHEMA, "zoomcamp_loads")
# Beyond this many separate runs of pickup days (a file full of wild dates), compare with the whole
# table, as the course does, rather than build a long OR of ranges.
MAX_PICKUP_RANGES = 64
# Rows written by this transaction (it must not run inside a savepoint, see load_month).
MINE = sql.SQL("xmin = pg_current_xact_id()::xid")
NOT_MINE = sql.SQL("xmin <> pg_current_xact_id()::xid")


@dataclass
class LoadReport:
    file: str
    table: str
    uncompressed_bytes: int
    rows_in_file: int
    rows_inserted: int
    skipped_unchanged: bool = False
    # Where the load's time went, phase by phase (`Phases`).
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class Phases:
    """Wall-clock seconds of a load's phases, in order, each from the end of the one before."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._since = clock.perf_counter()

    def done(self, name: str) -> None:
        now = clock.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._since
        self._since = now


def _ident(name: str) -> sql.Identifier:
    # The course creates its tables with unquoted names, which Postgres folds to lower case.
    return sql.Identifier(name.lower())


def _columns_ddl(schema: TaxiSchema) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(_ident(c.name), sql.SQL(c.pg_type)) for c in schema.columns
    )


def _column_list(schema: TaxiSchema, prefix: str = "") -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL(prefix) + _ident(n) for n in schema.column_names)


def final_table(schema: TaxiSchema) -> sql.Identifier:
    return sql.Identifier(SCHEMA, schema.table)


def row_id_expression(schema: TaxiSchema) -> sql.Composable:
    """md5(coalesce(VendorID::text,'') || coalesce(<pickup>::text,'') || ...), as the course computes it."""
    parts = [sql.SQL("coalesce({}::text, '')").format(_ident(name)) for name in row_id_field_names(schema)]
    return sql.SQL("md5({})").format(sql.SQL(" || ").join(parts))


def ensure_tables(conn, schema: TaxiSchema) -> None:
    table = final_table(schema)
    # Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog; the first runs of a
    # catch-up start together, so they take turns here (the lock ends with the transaction).
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('zoomcamp_taxi_ddl'))")
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (unique_row_id text, filename text, {})").format(
        table, _columns_ddl(schema)))
    # Indexes the course's table lacks, harmless on a table the Kestra flow created and cheap to
    # maintain (BRIN keeps a summary per block range): pickup time finds the rows that can hold a
    # new row's id, filename makes the rerun check nearly free. autosummarize lets autovacuum
    # summarise a load's new block ranges soon after it.
    # (Looked up first: CREATE and DROP INDEX take locks that would wait for another run's open load.)
    for index, column, opclass in _brin_indexes(schema):
        if _exists(conn, index):
            continue
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING brin ({} {}) WITH (autosummarize = on)").format(
            sql.Identifier(index), table, _ident(column), sql.SQL(opclass)))
    # Indexes of earlier versions: a btree on unique_row_id (its upkeep cost more than the whole
    # COPY) and a plain minmax BRIN on pickup (defeated by stray dates).
    for index in (f"{schema.table}_unique_row_id_idx", f"{schema.table}_{schema.pickup.lower()}_brin"):
        if _exists(conn, index):
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(SCHEMA, index)))
    conn.execute(sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (table_name text, filename text, content_md5 text, "
        "uncompressed_bytes bigint, rows_in_file bigint, rows_with_filename bigint, "
        "loaded_at timestamptz DEFAULT now(), PRIMARY KEY (table_name, filename))").format(LEDGER))


def _brin_indexes(schema: TaxiSchema) -> list[tuple[str, str, str]]:
    """(index name, column, operator class) of the BRIN indexes the loader keeps on the final table."""
    return [(f"{schema.table}_{schema.pickup.lower()}_brin_multi", schema.pickup, "timestamp_minmax_multi_ops"),
            (f"{schema.table}_filename_brin", "filename", "text_minmax_ops")]


def _exists(conn, index: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{index}",)).fetchone()[0] is not None


def summarize_new_ranges(conn, schema: TaxiSchema) -> None:
    """Summarise the block ranges earlier loads filled, so this load's queries skip them
    (autovacuum would do it up to a minute later; until then a BRIN scan reads every such range).

    Run before the load's own COPY and outside its transaction (it takes a lock that would
    otherwise be held to the end): each load pays for the ranges of the loads before it. An
    optimisation only: when the lock is not granted quickly, autovacuum summarises them later.
    """
    try:
        with conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '2s'")
            for index, _, _ in _brin_indexes(schema):
                conn.execute("SELECT brin_summarize_new_values(%s::regclass)", (f"{SCHEMA}.{index}",))
    except psycopg.errors.LockNotAvailable:
        log.info("BRIN summaries of %s left to autovacuum (the table is busy)", schema.table)


def unchanged_load(conn, schema: TaxiSchema, file_name: str, content_md5: str) -> LoadReport | None:
    """The report of an earlier load of this very file when all its rows are still in the table.

    Then there is nothing to do (not even to decompress the file); otherwise None.
    """
    with conn.transaction():
        ensure_tables(conn, schema)
        _plan_with_brin_and_hashes(conn)
        row = conn.execute(sql.SQL(
            "SELECT content_md5, uncompressed_bytes, rows_in_file, rows_with_filename FROM {} "
            "WHERE table_name = %s AND filename = %s").format(LEDGER), (schema.table, file_name)).fetchone()
        if row is None or row[0] != content_md5:
            return None
        if _rows_with_filename(conn, schema, file_name) != row[3]:
            return None  # rows were deleted since: a load restores them
    return LoadReport(file_name, schema.table, row[1], row[2], 0, skipped_unchanged=True)


def _rows_with_filename(conn, schema: TaxiSchema, file_name: str, extra: sql.Composable = sql.SQL("true")) -> int:
    return conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE filename = %s AND {}").format(
        final_table(schema), extra), (file_name,)).fetchone()[0]


def _why_not_one_pass(conn, schema: TaxiSchema, file_name: str) -> str | None:
    """None when the database allows the one-pass load, otherwise the reason it does not."""
    datestyle = conn.execute("SHOW DateStyle").fetchone()[0]
    float_digits = int(conn.execute("SHOW extra_float_digits").fetchone()[0])
    if not datestyle.startswith("ISO") or float_digits < 1:
        return f"the server renders values differently (DateStyle {datestyle}, extra_float_digits {float_digits})"
    # Rows of an earlier load of the file are on its month's days (the rare ones elsewhere are
    # still found by the comparison, at the cost of copying them again).
    if _rows_with_filename(conn, schema, file_name, _in_file_month(schema, file_name)):
        return "rows of this file are already in the table (only the missing ones are inserted)"
    return None


def _copy(conn, copy_sql: sql.Composable, chunks: Iterable[bytes]) -> int:
    with conn.cursor() as cur:
        with cur.copy(copy_sql) as copy:
            for chunk in chunks:
                copy.write(chunk)
        return cur.rowcount


def _file_chunks(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as src:
        while chunk := src.read(1 << 20):
            yield chunk


def _create_staging(conn, schema: TaxiSchema) -> None:
    conn.execute(sql.SQL("CREATE TEMP TABLE staging ({}) ON COMMIT DROP").format(_columns_ddl(schema)))


def _staging_copy_sql(schema: TaxiSchema, header: bool) -> sql.Composable:
    return sql.SQL("COPY staging ({}) FROM STDIN (FORMAT csv, HEADER {})").format(
        _column_list(schema), sql.SQL("true" if header else "false"))


def _staged_pickup_days(conn, schema: TaxiSchema) -> set[date | None]:
    return {row[0] for row in conn.execute(sql.SQL("SELECT DISTINCT {}::date FROM staging").format(
        _ident(schema.pickup)))}


def _pickup_condition(schema: TaxiSchema, days: Iterable[date | None]) -> sql.Composable:
    """Rows picked up on one of `days` (None: rows without a pickup), as merged [start, end) ranges.

    Too scattered days give `true`: compare with the whole table, as the course does.
    """
    pickup = _ident(schema.pickup)
    days = set(days)
    ranges: list[list[date]] = []
    for day in sorted(d for d in days if d is not None):
        if ranges and day == ranges[-1][1]:
            ranges[-1][1] = day + timedelta(days=1)
        else:
            ranges.append([day, day + timedelta(days=1)])
    if len(ranges) > MAX_PICKUP_RANGES:
        return sql.SQL("true")
    conditions = [sql.SQL("({col} >= {a} AND {col} < {b})").format(
        col=pickup, a=sql.Literal(datetime.combine(a, time())), b=sql.Literal(datetime.combine(b, time())))
        for a, b in ranges]
    if None in days:
        conditions.append(sql.SQL("{} IS NULL").format(pickup))
    return sql.SQL("({})").format(sql.SQL(" OR ").join(conditions)) if conditions else sql.SQL("false")


def _plan_with_brin_and_hashes(conn) -> None:
    """For the rest of the transaction: BRIN scans of the final table, hash joins (module docstring).

    (A table without an index, such as the temporary ones, is still scanned: no other plan exists.)
    """
    for setting in ("enable_seqscan", "enable_nestloop", "enable_mergejoin"):
        conn.execute(f"SET LOCAL {setting} = off")


def _lock_table(conn, schema: TaxiSchema) -> None:
    """Loads of one table compare and insert in turn (other months still copy in parallel)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{SCHEMA}.{schema.table}",))
    _plan_with_brin_and_hashes(conn)


def _collect_existing_ids(conn, schema: TaxiSchema, on_days: sql.Composable) -> bool:
    """TEMP table existing_ids: ids of rows (from before this transaction) a new row could equal."""
    # A rerun that restores deleted rows compares with a whole month of ids; hash it in memory.
    conn.execute("SET LOCAL work_mem = '256MB'")
    conn.execute(sql.SQL("CREATE TEMP TABLE existing_ids ON COMMIT DROP AS "
                         "SELECT unique_row_id FROM {} WHERE {} AND {}").format(final_table(schema), on_days, NOT_MINE))
    conn.execute("ANALYZE existing_ids")
    return conn.execute("SELECT EXISTS (SELECT 1 FROM existing_ids)").fetchone()[0]


def _insert_sql(schema: TaxiSchema, source: sql.Composable) -> sql.Composable:
    """INSERT the rows of `source` (staging columns plus unique_row_id) with the file name (%s)."""
    return sql.SQL("INSERT INTO {table} (unique_row_id, filename, {cols}) SELECT s.unique_row_id, %s, {s_cols} "
                   "FROM {source}").format(table=final_table(schema), cols=_column_list(schema),
                                           s_cols=_column_list(schema, "s."), source=source)


def _staged_rows_with_ids(schema: TaxiSchema, where: sql.Composable = sql.SQL("true")) -> sql.Composable:
    return sql.SQL("SELECT {row_id} AS unique_row_id, * FROM staging WHERE {where}").format(
        row_id=row_id_expression(schema), where=where)


def _in_file_month(schema: TaxiSchema, file_name: str) -> sql.Composable:
    """Rows picked up in the month the file is named after (`true` for a file named otherwise)."""
    month = schema.file_month(file_name)
    if month is None:
        return sql.SQL("true")
    start = date.fromisoformat(f"{month}-01")
    return sql.SQL("({col} >= {a} AND {col} < {b})").format(
        col=_ident(schema.pickup), a=sql.Literal(datetime.combine(start, time())),
        b=sql.Literal(datetime.combine((start + timedelta(days=31)).replace(day=1), time())))


def _in_month_then_strays(schema: TaxiSchema, file_name: str) -> list[sql.Composable]:
    """Conditions on staging rows: those picked up in the file's month, then the strays.

    Inserted in that order, the strays share the last pages of the load (see row_ids.py).
    """
    in_month = _in_file_month(schema, file_name)
    return [in_month, sql.SQL("{} IS NOT TRUE").format(in_month)]


def _execute(conn, statement: sql.Composable, params=()) -> int:
    with conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.rowcount


def _month_days(schema: TaxiSchema, file_name: str) -> set[date] | None:
    """Every day of the month the file is named after (None for a file named otherwise)."""
    month = schema.file_month(file_name)
    if month is None:
        return None
    year, number = map(int, month.split("-"))
    return {date(year, number, day) for day in range(1, calendar.monthrange(year, number)[1] + 1)}


def one_pass_copy_sql(schema: TaxiSchema) -> sql.Composable:
    """The COPY of the one-pass load: rows as row_ids.annotate_query writes them, into the final table."""
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT text, DELIMITER ',', NULL '')").format(
        final_table(schema), sql.SQL(", ").join(_ident(c) for c in copy_columns(schema)))


def _load_in_one_pass(conn, schema: TaxiSchema, file_name: str, downloaded: Download, ids: Annotation,
                      phases: Phases) -> tuple[VerifiedFile, int, int]:
    """COPY rows with their ids into the final table while the file is verified, then take back
    those already present. Returns (the verified file, rows inserted, rows with this file name).

    Raises what the verification found (nothing is committed then), OnePassUnsuitable for a file
    staging must read.
    """
    table = final_table(schema)
    inserted = _copy(conn, one_pass_copy_sql(schema), ids.copy_rows())
    csv = ids.finish(file_name, downloaded)  # the whole file passed, or this raises
    summary = ids.summary
    phases.done("stream")
    # The stream's wall time is the loader waiting for DuckDB's ids or sending rows to Postgres
    # (and waiting for it); the verification runs beside both in its own thread.
    ids_seconds = summary.seconds["ids"]
    phases.seconds.update({"stream.ids": ids_seconds, "stream.copy": phases.seconds["stream"] - ids_seconds,
                           "stream.verify_cpu": summary.seconds["verify"]})
    # Rows in the month are on its days by definition; strays and leftovers add theirs.
    month_days = _month_days(schema, file_name)
    days: set[date | None] | None = None if month_days is None else month_days | summary.stray_days
    if summary.leftover_rows:  # spelled differently than Postgres renders them: Postgres hashes them
        _create_staging(conn, schema)
        _copy(conn, _staging_copy_sql(schema, header=False), _file_chunks(ids.leftover_path))
        if days is not None:
            days |= _staged_pickup_days(conn, schema)
        inserted += _execute(conn, _insert_sql(schema, sql.SQL("({}) s").format(_staged_rows_with_ids(schema))),
                             (csv.file_name,))
        phases.done("leftovers")
    _lock_table(conn, schema)
    on_days = sql.SQL("true") if days is None else _pickup_condition(schema, days)
    if not _collect_existing_ids(conn, schema, on_days):
        phases.done("compare")
        return csv, inserted, inserted
    inserted -= _execute(conn, sql.SQL(
        "DELETE FROM {} WHERE {} AND {} AND unique_row_id IN (SELECT unique_row_id FROM existing_ids)").format(
        table, on_days, MINE))
    # Rows of the file from other loads (the same month loaded at once twice) are on its days too.
    others = sql.SQL("{} AND {}").format(on_days, NOT_MINE)
    rows_with_filename = inserted + _rows_with_filename(conn, schema, csv.file_name, others)
    phases.done("compare")
    return csv, inserted, rows_with_filename


def _load_through_staging(conn, schema: TaxiSchema, csv: VerifiedFile) -> tuple[int, int]:
    """COPY into staging, then insert the rows whose id is not present yet. Returns as above."""
    _create_staging(conn, schema)
    try:
        _copy(conn, _staging_copy_sql(schema, header=True), csv.csv_chunks())
    except Exception as exc:  # a value Postgres rejects: name the file and the line
        if getattr(exc, "sqlstate", None) is None:
            raise
        raise TaxiFileError(describe_copy_error(csv.file_name, exc)) from None
    _lock_table(conn, schema)
    any_existing = _collect_existing_ids(conn, schema, _pickup_condition(schema, _staged_pickup_days(conn, schema)))
    inserted = 0
    for rows in _in_month_then_strays(schema, csv.file_name):
        if any_existing:
            # OFFSET 0 keeps the subquery whole: md5 runs once per row, not for the test and again for the insert.
            source = sql.SQL("({} OFFSET 0) s WHERE NOT EXISTS "
                             "(SELECT 1 FROM existing_ids e WHERE e.unique_row_id = s.unique_row_id)").format(
                _staged_rows_with_ids(schema, rows))
        else:  # nothing to compare with
            source = sql.SQL("({}) s").format(_staged_rows_with_ids(schema, rows))
        inserted += _execute(conn, _insert_sql(schema, source), (csv.file_name,))
    return inserted, _rows_with_filename(conn, schema, csv.file_name)


def _record_load(conn, schema: TaxiSchema, report: LoadReport, content_md5: str, rows_with_filename: int) -> None:
    conn.execute(sql.SQL(
        "INSERT INTO {} (table_name, filename, content_md5, uncompressed_bytes, rows_in_file, rows_with_filename) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (table_name, filename) DO UPDATE SET "
        "content_md5 = EXCLUDED.content_md5, uncompressed_bytes = EXCLUDED.uncompressed_bytes, "
        "rows_in_file = EXCLUDED.rows_in_file, rows_with_filename = EXCLUDED.rows_with_filename, "
        "loaded_at = now()").format(LEDGER),
        (schema.table, report.file, content_md5, report.uncompressed_bytes, report.rows_in_file, rows_with_filename))


def load_month(conn, schema: TaxiSchema, file_name: str, downloaded: Download, workdir: Path) -> LoadReport:
    """Verify a downloaded month and load it into the final table in one transaction.

    `conn` is a psycopg 3 connection (PostgresHook(...).get_conn() in Airflow) with no transaction
    open: the one-pass path tells its own rows by their xmin, which a savepoint would change.
    `workdir` holds the files of the one-pass path while it runs.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("load_month needs a connection with no transaction open")
    phases = Phases()
    with conn.transaction():
        ensure_tables(conn, schema)
    summarize_new_ranges(conn, schema)
    report = _load(conn, schema, file_name, downloaded, workdir, phases)
    report.phase_seconds = phases.seconds
    return report


def _load(conn, schema: TaxiSchema, file_name: str, downloaded: Download, workdir: Path,
          phases: Phases) -> LoadReport:
    with conn.transaction():
        _plan_with_brin_and_hashes(conn)
        why_not = _why_not_one_pass(conn, schema, file_name)
    phases.done("prepare")
    if why_not is None:
        try:
            # Verification, ids and COPY in one pass; the transaction commits only if the whole file passed.
            with conn.transaction():
                with annotation(downloaded, schema, file_name, workdir) as ids:
                    csv, inserted, rows_with_filename = _load_in_one_pass(conn, schema, file_name, downloaded, ids,
                                                                          phases)
                report = _finish(conn, schema, csv, (inserted, rows_with_filename))
            phases.done("commit")
            return report
        except (psycopg.errors.DataError, duckdb.Error, OnePassUnsuitable) as exc:
            # A value Postgres or DuckDB rejects: the staging path reports it with its line number.
            why_not = f"the one-pass load stopped ({str(exc).splitlines()[0]})"
            phases.done("one-pass attempt")
    log.info("Loading %s through a staging table: %s", file_name, why_not)
    csv = verify_gz_file(downloaded, schema, file_name)
    phases.done("verify")
    with conn.transaction():
        report = _finish(conn, schema, csv, _load_through_staging(conn, schema, csv))
    phases.done("staging")
    return report


def _finish(conn, schema: TaxiSchema, csv: VerifiedFile, counts: tuple[int, int]) -> LoadReport:
    inserted, rows_with_filename = counts
    report = LoadReport(csv.file_name, schema.table, csv.uncompressed_bytes, csv.rows, inserted)
    _record_load(conn, schema, report, csv.content_md5, rows_with_filename)
    return report
