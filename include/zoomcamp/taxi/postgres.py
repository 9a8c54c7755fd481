"""Load one verified month into the course's Postgres table, once, atomically.

The course's SQL sequence is: COPY into a shared staging table, UPDATE every staging row with its
unique_row_id and filename, MERGE the new ids into the final table. Here the same result comes from:

1. COPY the verified CSV into a temporary staging table private to this run (parallel runs for
   other or the same month never share it; a killed run leaves nothing behind);
2. under a per-table advisory lock (so concurrent runs of the same month cannot both insert), collect
   the ids the final table already holds for the pickup days present in the file, then one
   INSERT ... SELECT that computes unique_row_id exactly as the course does (md5 over the seven
   fields as Postgres renders them) and inserts only ids not among them;
3. a row in `zoomcamp_loads` recording the file's checksum, so a rerun of an unchanged file that is
   still fully in the table is recognised without copying it again.

All of it is one transaction: the final table either gets the month or stays as it was.

Why pickup days: the course's MERGE compares ids with every row of the final table. Equal ids come
from equal field texts, so a row that already holds a new row's id has the same pickup time; the
rows to compare with are the ones on the file's pickup days (plus rows without a pickup). A BRIN
index on the pickup column finds them without reading other months, where a btree on
unique_row_id would cost a random insertion per row into an index as large as the whole table.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

from psycopg import sql

from include.zoomcamp.taxi.schemas import TaxiSchema
from include.zoomcamp.taxi.source import TaxiFileError, describe_copy_error

SCHEMA = "public"
LEDGER = sql.Identifier(SCHEMA, "zoomcamp_loads")
# The seven fields of the course's unique_row_id, in its order; casts as in the course.
ROW_ID_FIELDS = ("VendorID", "{pickup}", "{dropoff}", "PULocationID", "DOLocationID", "fare_amount", "trip_distance")
# Beyond this many separate runs of pickup days (a file full of wild dates), compare with the whole
# table, as the course does, rather than build a long OR of ranges.
MAX_PICKUP_RANGES = 64


@dataclass
class LoadReport:
    file: str
    table: str
    uncompressed_bytes: int
    rows_in_file: int
    rows_inserted: int
    skipped_unchanged: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


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
    parts = []
    for field in ROW_ID_FIELDS:
        name = field.format(pickup=schema.pickup, dropoff=schema.dropoff)
        parts.append(sql.SQL("coalesce({}::text, '')").format(_ident(name)))
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
    # (Looked up first: CREATE INDEX takes a lock that would wait for another run's open load.)
    for column in (schema.pickup, "filename"):
        index = f"{schema.table}_{column.lower()}_brin"
        if conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{index}",)).fetchone()[0]:
            continue
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING brin ({}) WITH (autosummarize = on)").format(
            sql.Identifier(index), table, _ident(column)))
    # Earlier versions kept a btree on unique_row_id; its upkeep cost more than the whole COPY.
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(
        sql.Identifier(SCHEMA, f"{schema.table}_unique_row_id_idx")))
    conn.execute(sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (table_name text, filename text, content_md5 text, "
        "uncompressed_bytes bigint, rows_in_file bigint, rows_with_filename bigint, "
        "loaded_at timestamptz DEFAULT now(), PRIMARY KEY (table_name, filename))").format(LEDGER))


def _unchanged_and_complete(conn, schema: TaxiSchema, file_name: str, content_md5: str) -> LoadReport | None:
    row = conn.execute(sql.SQL(
        "SELECT content_md5, uncompressed_bytes, rows_in_file, rows_with_filename FROM {} "
        "WHERE table_name = %s AND filename = %s").format(LEDGER), (schema.table, file_name)).fetchone()
    if row is None or row[0] != content_md5:
        return None
    (present,) = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE filename = %s").format(
        final_table(schema)), (file_name,)).fetchone()
    if present != row[3]:
        return None  # rows were deleted since: take the full path, which restores them
    return LoadReport(file_name, schema.table, row[1], row[2], 0, skipped_unchanged=True)


def _copy_into_staging(conn, schema: TaxiSchema, file_name: str, csv_chunks: Iterable[bytes]) -> tuple[int, int]:
    conn.execute(sql.SQL("CREATE TEMP TABLE staging ({}) ON COMMIT DROP").format(_columns_ddl(schema)))
    copy_sql = sql.SQL("COPY staging ({}) FROM STDIN (FORMAT csv, HEADER true)").format(_column_list(schema))
    total = 0
    with conn.cursor() as cur:
        try:
            with cur.copy(copy_sql) as copy:
                for chunk in csv_chunks:
                    total += len(chunk)
                    copy.write(chunk)
        except TaxiFileError:
            raise
        except Exception as exc:  # psycopg reports short rows, extra fields and bad values here
            if getattr(exc, "sqlstate", None) is None:
                raise
            raise TaxiFileError(describe_copy_error(file_name, exc)) from None
        return total, cur.rowcount


def _pickup_day_ranges(conn, schema: TaxiSchema) -> tuple[list[tuple[datetime, datetime]], bool] | None:
    """The staged rows' pickup days merged into [start, end) ranges, and whether any pickup is empty.

    None when the days are too scattered to be worth ranges (then the whole table is compared).
    """
    found = [row[0] for row in conn.execute(sql.SQL("SELECT DISTINCT {}::date FROM staging").format(
        _ident(schema.pickup)))]
    has_null = None in found
    days = sorted(day for day in found if day is not None)
    ranges: list[list[date]] = []
    for day in days:
        if ranges and day == ranges[-1][1]:
            ranges[-1][1] = day + timedelta(days=1)
        else:
            ranges.append([day, day + timedelta(days=1)])
    if len(ranges) > MAX_PICKUP_RANGES:
        return None
    return [(datetime.combine(a, time()), datetime.combine(b, time())) for a, b in ranges], has_null


def _collect_existing_ids(conn, schema: TaxiSchema) -> None:
    """TEMP table existing_ids: ids of final-table rows that a staged row could equal (see module doc)."""
    pickup = _ident(schema.pickup)
    found = _pickup_day_ranges(conn, schema)
    if found is None:
        where = sql.SQL("true")
    else:
        ranges, has_null = found
        conditions = [sql.SQL("({col} >= {a} AND {col} < {b})").format(col=pickup, a=sql.Literal(a), b=sql.Literal(b))
                      for a, b in ranges]
        if has_null:
            conditions.append(sql.SQL("{} IS NULL").format(pickup))
        where = sql.SQL(" OR ").join(conditions) if conditions else sql.SQL("false")
    conn.execute(sql.SQL("CREATE TEMP TABLE existing_ids ON COMMIT DROP AS SELECT unique_row_id FROM {} WHERE {}").format(
        final_table(schema), where))
    conn.execute("ANALYZE existing_ids")


def _insert_new_rows(conn, schema: TaxiSchema, file_name: str) -> int:
    table = final_table(schema)
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{SCHEMA}.{schema.table}",))
    # A rerun that restores deleted rows compares with a whole month of ids; hash it in memory.
    conn.execute("SET LOCAL work_mem = '256MB'")
    _collect_existing_ids(conn, schema)
    (any_existing,) = conn.execute("SELECT EXISTS (SELECT 1 FROM existing_ids)").fetchone()
    new_rows = sql.SQL("SELECT {row_id} AS unique_row_id, * FROM staging").format(row_id=row_id_expression(schema))
    if any_existing:
        # OFFSET 0 keeps the subquery whole, so md5 runs once per row, not once for the test and again for the insert.
        source = sql.SQL("({} OFFSET 0) s WHERE NOT EXISTS "
                         "(SELECT 1 FROM existing_ids e WHERE e.unique_row_id = s.unique_row_id)").format(new_rows)
    else:  # the usual first load of a month: nothing to compare with
        source = sql.SQL("({}) s").format(new_rows)
    statement = sql.SQL("INSERT INTO {table} (unique_row_id, filename, {cols}) SELECT s.unique_row_id, %s, {s_cols} "
                        "FROM {source}").format(table=table, cols=_column_list(schema),
                                                s_cols=_column_list(schema, "s."), source=source)
    with conn.cursor() as cur:
        cur.execute(statement, (file_name,))
        return cur.rowcount


def _record_load(conn, schema: TaxiSchema, report: LoadReport, content_md5: str) -> None:
    (present,) = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE filename = %s").format(
        final_table(schema)), (report.file,)).fetchone()
    conn.execute(sql.SQL(
        "INSERT INTO {} (table_name, filename, content_md5, uncompressed_bytes, rows_in_file, rows_with_filename) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (table_name, filename) DO UPDATE SET "
        "content_md5 = EXCLUDED.content_md5, uncompressed_bytes = EXCLUDED.uncompressed_bytes, "
        "rows_in_file = EXCLUDED.rows_in_file, rows_with_filename = EXCLUDED.rows_with_filename, "
        "loaded_at = now()").format(LEDGER),
        (schema.table, report.file, content_md5, report.uncompressed_bytes, report.rows_in_file, present))


def load_month(conn, schema: TaxiSchema, file_name: str, content_md5: str, csv_chunks: Iterable[bytes]) -> LoadReport:
    """Load `csv_chunks` (a verified CSV with header) into the final table in one transaction.

    `conn` is a psycopg 3 connection (PostgresHook(...).get_conn() in Airflow).
    """
    with conn.transaction():
        ensure_tables(conn, schema)
    with conn.transaction():
        unchanged = _unchanged_and_complete(conn, schema, file_name, content_md5)
        if unchanged is not None:
            return unchanged
        size, rows = _copy_into_staging(conn, schema, file_name, csv_chunks)
        inserted = _insert_new_rows(conn, schema, file_name)
        report = LoadReport(file_name, schema.table, size, rows, inserted)
        _record_load(conn, schema, report, content_md5)
    return report
