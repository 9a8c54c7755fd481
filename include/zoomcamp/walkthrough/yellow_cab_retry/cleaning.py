"""`yellow_cab_retry_subflow`: a staging table into `trips_clean`, with a fallback, and the rollback of a file.

- `strict_insert`: one INSERT … SELECT with CAST: any value that does not cast, or an empty
  required field (ERROR()), fails the whole statement and inserts nothing;
- `safe_cast_insert` (only when the strict one failed): SAFE_CAST instead; rows whose required
  fields do not survive go to `trips_rejected` with a `reject_reason`, the others to
  `trips_clean`. It fails, writing nothing, when the file is mostly unreadable
  (more than MAX_REJECTED_SHARE of its rows rejected): that is the wrong file, not a dirty one;
- `rollback` (the main DAG, when the subflow failed): the file's rows leave `trips_clean` and `trips_rejected`.

Each insert first deletes that object generation's rows, so a retry inserts nothing twice. The SQL works on
BigQuery and on the local bqemulator (DuckDB): CAST, SAFE_CAST, ERROR(), DELETE with query parameters; one
statement per query (the emulator refuses scripts with parameters).
"""
from __future__ import annotations

import logging

from include.zoomcamp import config, sql
from include.zoomcamp.gcp.bigquery import job_config, query_rows, table_ref
from include.zoomcamp.walkthrough.yellow_cab.tables import YELLOW_COLUMNS
from include.zoomcamp.walkthrough.yellow_cab_retry.files import MAIN_DAG_ID, STAGING_PREFIX, RetryFileError
from include.zoomcamp.walkthrough.yellow_cab_retry.tables import CLEAN_TABLE, DATASET, REJECTED_TABLE, bigquery_client

log = logging.getLogger(__name__)

SUBFLOW_DAG_ID = "yellow_cab_retry_subflow"

# A trip without these is no trip: the safe-cast fallback rejects rows where one is empty or unparsable.
REQUIRED_COLUMNS = ("tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID", "DOLocationID",
                    "trip_distance", "fare_amount", "total_amount")

# The fallback gives up on a file when more than this share of its rows would be rejected.
MAX_REJECTED_SHARE = 0.5

STRICT, SAFE_CAST = "strict", "safe_cast"
_SQL_TYPE = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "STRING": "STRING", "TIMESTAMP": "TIMESTAMP"}


def _source_params(source_uri: str, generation: int) -> list:
    from google.cloud import bigquery

    return [bigquery.ScalarQueryParameter("uri", "STRING", source_uri),
            bigquery.ScalarQueryParameter("generation", "INT64", int(generation))]


def mapped_columns(staging_columns: list[str], source: str) -> list[tuple[str, str, str]]:
    """(staging column, trips column, BigQuery type) for the file's known columns, matched by name
    case-insensitively (TLC spells `airport_fee` both ways). RetryFileError naming `source` when a
    required column is missing; unknown columns are logged and left out."""
    known = {name.lower(): (name, bq_type) for name, bq_type in YELLOW_COLUMNS}
    mapped, unknown = [], []
    for column in staging_columns:
        target = known.pop(column.lower(), None)
        if target is None:
            unknown.append(column)
        else:
            mapped.append((column, *target))
    missing = [c for c in REQUIRED_COLUMNS if c.lower() in known]
    if missing:
        raise RetryFileError(f"{source}: required column(s) {missing} missing; its header has {staging_columns}")
    if unknown:
        log.warning("%s: columns not in %s, left out: %s", source, CLEAN_TABLE, unknown)
    return mapped


def _value(column: str) -> str:
    return f"NULLIF(TRIM(`{column}`), '')"


def strict_insert_sql(project: str, staging_table: str, columns: list[tuple[str, str, str]]) -> str:
    """CAST every value; an empty required field raises ERROR(): all rows or none."""
    required = {c.lower() for c in REQUIRED_COLUMNS}
    select = []
    for source, target, bq_type in columns:
        expr = f"CAST({_value(source)} AS {_SQL_TYPE[bq_type]})"
        if target.lower() in required:
            expr = f"COALESCE({expr}, ERROR('required column {target} is empty'))"
        select.append(expr)
    into = [f"`{target}`" for _, target, _ in columns] + ["source_uri", "source_generation", "cleaning"]
    return sql.render(__file__, "insert_clean", clean_table=table_ref(project, DATASET, CLEAN_TABLE),
                      columns=", ".join(into), values=", ".join(select), cleaning=STRICT,
                      staging_table=table_ref(project, DATASET, staging_table), keep=None)


def _survives(columns: list[tuple[str, str, str]]) -> dict[str, str]:
    """trips column -> the SQL condition 'this required value survives SAFE_CAST'."""
    required = {c.lower() for c in REQUIRED_COLUMNS}
    return {target: f"SAFE_CAST({_value(source)} AS {_SQL_TYPE[bq_type]}) IS NOT NULL"
            for source, target, bq_type in columns if target.lower() in required}


def safe_cast_sql(project: str, staging_table: str, columns: list[tuple[str, str, str]]) -> dict[str, str]:
    """The fallback's queries: `count` (rows, kept), `clean` (kept rows, SAFE_CAST: a bad optional
    value becomes NULL) and `rejected` (the others as read, with the failing columns named)."""
    survives = _survives(columns)
    keep = " AND ".join(survives.values())
    staging = table_ref(project, DATASET, staging_table)
    clean_into = [f"`{t}`" for _, t, _ in columns] + ["source_uri", "source_generation", "cleaning"]
    clean_select = [f"SAFE_CAST({_value(s)} AS {_SQL_TYPE[t]})" for s, _, t in columns]
    reason = ", ".join(f"IF({cond}, '', ' {target}')" for target, cond in survives.items())
    rejected_into = [f"`{t}`" for _, t, _ in columns] + ["source_uri", "source_generation", "reject_reason"]
    return {
        "count": sql.render(__file__, "count_kept", keep=keep, staging_table=staging),
        "clean": sql.render(__file__, "insert_clean", clean_table=table_ref(project, DATASET, CLEAN_TABLE),
                            columns=", ".join(clean_into), values=", ".join(clean_select), cleaning=SAFE_CAST,
                            staging_table=staging, keep=keep),
        "rejected": sql.render(__file__, "insert_rejected",
                               rejected_table=table_ref(project, DATASET, REJECTED_TABLE),
                               columns=", ".join(rejected_into), values=", ".join(f"`{s}`" for s, _, _ in columns),
                               reason=reason, staging_table=staging, keep=keep),
    }


def delete_rows(client, project: str, source_uri: str, generation: int) -> dict[str, int]:
    """Delete that object generation's rows from both tables; returns rows deleted per table."""
    deleted = {}
    for table in (CLEAN_TABLE, REJECTED_TABLE):
        job = client.query(sql.render(__file__, "delete_source_rows", table=table_ref(project, DATASET, table)),
                           job_config=job_config(_source_params(source_uri, generation)))
        job.result()
        deleted[table] = job.num_dml_affected_rows or 0
    return deleted


def _staging_columns(client, project: str, staging_table: str) -> list[str]:
    from google.api_core import exceptions

    try:
        return [f.name for f in client.get_table(f"{project}.{DATASET}.{staging_table}").schema]
    except exceptions.NotFound:
        raise RetryFileError(f"No staging table {DATASET}.{staging_table}: run yellow_cab_retry_main, "
                             "which loads the file into it first") from None


def subflow_conf(params: dict) -> tuple[str, str, int]:
    """(staging_table, source_uri, source_generation) from the subflow's params; RetryFileError when the
    run was not given them (the main DAG passes them in its conf)."""
    staging_table, source_uri = params.get("staging_table") or "", params.get("source_uri") or ""
    if not staging_table.startswith(STAGING_PREFIX) or not source_uri.startswith("gs://"):
        raise RetryFileError(f"Conf staging_table={staging_table!r}, source_uri={source_uri!r}: this DAG cleans "
                             f"a staging table {MAIN_DAG_ID} loaded; trigger that DAG instead")
    return staging_table, source_uri, int(params.get("source_generation") or 0)


def strict_insert(staging_table: str, source_uri: str, generation: int, *, project: str,
                  conn_id: str = config.GCP_CONN_ID) -> dict:
    """The strict insert; RetryFileError (nothing inserted) when a value does not cast."""
    from google.api_core import exceptions

    client = bigquery_client(project, conn_id)
    columns = mapped_columns(_staging_columns(client, project, staging_table), source_uri)
    delete_rows(client, project, source_uri, generation)
    job = client.query(strict_insert_sql(project, staging_table, columns),
                       job_config=job_config(_source_params(source_uri, generation)))
    try:
        job.result()
    except exceptions.BadRequest as exc:
        raise RetryFileError(f"{source_uri}#{generation}: the strict typed insert failed, nothing inserted: "
                             f"{exc.message}") from None
    rows = job.num_dml_affected_rows or 0
    log.info("Strict insert of %s#%s: %d rows into %s.%s", source_uri, generation, rows, DATASET, CLEAN_TABLE)
    return {"source_uri": source_uri, "cleaning": STRICT, "clean": rows, "rejected": 0}


def safe_cast_insert(staging_table: str, source_uri: str, generation: int, *, project: str,
                     conn_id: str = config.GCP_CONN_ID) -> dict:
    """The fallback; RetryFileError, writing nothing, when more than MAX_REJECTED_SHARE of the rows
    (or all of none) would be rejected."""
    client = bigquery_client(project, conn_id)
    columns = mapped_columns(_staging_columns(client, project, staging_table), source_uri)
    queries = safe_cast_sql(project, staging_table, columns)
    total, kept = query_rows(client, queries["count"])[0]
    rejected = total - kept
    if not total or rejected > MAX_REJECTED_SHARE * total:
        raise RetryFileError(f"{source_uri}#{generation}: the safe-cast fallback would reject {rejected} of "
                             f"{total} rows (required {list(REQUIRED_COLUMNS)} empty or unparsable; at most "
                             f"{MAX_REJECTED_SHARE:.0%} allowed): not a dirty file but a wrong one, nothing written")
    delete_rows(client, project, source_uri, generation)
    params = _source_params(source_uri, generation)
    for name in ("clean", "rejected"):
        query_rows(client, queries[name], params)
    log.info("Safe-cast insert of %s#%s: %d rows into %s, %d into %s", source_uri, generation, kept,
             CLEAN_TABLE, rejected, REJECTED_TABLE)
    return {"source_uri": source_uri, "cleaning": SAFE_CAST, "clean": kept, "rejected": rejected}


def rollback(source_uri: str, generation: int, *, project: str, conn_id: str = config.GCP_CONN_ID) -> dict:
    """The failed file's rows out of trips_clean and trips_rejected (none there is fine)."""
    deleted = delete_rows(bigquery_client(project, conn_id), project, source_uri, int(generation))
    log.info("Rolled back %s#%s: deleted %s", source_uri, generation, deleted)
    return deleted
