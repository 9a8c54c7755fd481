"""Yellow-cab CSV files into `yc_retry.trips_clean`, with a fallback and a rollback (walkthrough 3_4).

Per file (`yellow_cab_retry_main` maps over them):

1. `load_staging`: the CSV into its own staging table (every column STRING, named by the header),
   so nothing can fail on a value yet; a file BigQuery cannot read as CSV fails here.
2. `yellow_cab_retry_subflow` cleans the staging table into `trips_clean`:
   - `strict_insert`: one INSERT … SELECT with CAST: any value that does not cast, or an empty
     required field (ERROR()), fails the whole statement and inserts nothing;
   - `safe_cast_insert` (only when the strict one failed): SAFE_CAST instead; rows whose required
     fields do not survive go to `trips_rejected` with a `reject_reason`, the others to
     `trips_clean`. It fails, writing nothing, when the file is mostly unreadable
     (more than MAX_REJECTED_SHARE of its rows rejected): that is the wrong file, not a dirty one.
3. `rollback` when the subflow failed: the file's rows leave `trips_clean` and `trips_rejected`.

Rows carry `source_uri` and `source_generation` (GCS): that is what a rerun replaces and what a
rollback deletes. Each insert first deletes that object generation's rows, so a retry inserts
nothing twice. The SQL works on BigQuery and on the local bqemulator (DuckDB): CAST, SAFE_CAST,
ERROR(), DELETE with query parameters; one statement per query (the emulator refuses scripts with
parameters).
"""
from __future__ import annotations

import hashlib
import logging
import posixpath
from datetime import datetime, timedelta, timezone

from include.zoomcamp import config, sql
from include.zoomcamp.errors import PermanentError
from include.zoomcamp.gcp.bigquery import job_config, query_rows, query_scalar, table_ref
from include.zoomcamp.walkthrough import yellow_cab

log = logging.getLogger(__name__)

DATASET = config.YC_RETRY_DATASET
PREFIX = "yc-retry/"  # the walkthrough's folder; data/, archive/ and errors/ below it
DATA, ARCHIVE, ERRORS = "data/", "archive/", "errors/"
CLEAN_TABLE = "trips_clean"
REJECTED_TABLE = "trips_rejected"
STAGING_PREFIX = "stage_"
STAGING_TTL = timedelta(hours=6)  # a staging table left by a crash expires by itself

# A trip without these is no trip: the safe-cast fallback rejects rows where one is empty or unparsable.
REQUIRED_COLUMNS = ("tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID", "DOLocationID",
                    "trip_distance", "fare_amount", "total_amount")
# The fallback gives up on a file when more than this share of its rows would be rejected.
MAX_REJECTED_SHARE = 0.5

SOURCE_COLUMNS = yellow_cab.SOURCE_COLUMNS
CLEANING_COLUMN = ("cleaning", "STRING", "strict or safe_cast: which insert wrote the row")
REJECT_REASON_COLUMN = ("reject_reason", "STRING", "required fields empty or unparsable")
STRICT, SAFE_CAST = "strict", "safe_cast"
MAIN_DAG_ID = "yellow_cab_retry_main"
SUBFLOW_DAG_ID = "yellow_cab_retry_subflow"
_SQL_TYPE = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "STRING": "STRING", "TIMESTAMP": "TIMESTAMP"}


class RetryFileError(PermanentError):
    """The file cannot be cleaned as it is: a retry would read the same."""


# -- tables ------------------------------------------------------------------------------------
def clean_table_resource() -> dict:
    fields = [{"name": n, "type": t, "mode": "NULLABLE"} for n, t in yellow_cab.YELLOW_COLUMNS]
    fields += [{"name": n, "type": t, "mode": "NULLABLE", "description": d}
               for n, t, d in (*SOURCE_COLUMNS, CLEANING_COLUMN)]
    return {"schema": {"fields": fields}, "description": "Typed yellow-cab trips from yc-retry/data/ CSV files"}


def rejected_table_resource() -> dict:
    fields = [{"name": n, "type": "STRING", "mode": "NULLABLE"} for n, _ in yellow_cab.YELLOW_COLUMNS]
    fields += [{"name": n, "type": t, "mode": "NULLABLE", "description": d}
               for n, t, d in (*SOURCE_COLUMNS, REJECT_REASON_COLUMN)]
    return {"schema": {"fields": fields},
            "description": "Rows the safe-cast fallback could not keep, as read, with the reason"}


def create_tables_tasks(project: str, location: str):
    """In the DAG being defined: `create_dataset` >> [`create_clean_table`, `create_rejected_table`],
    each succeeding when its resource exists. Returns (first task, last tasks)."""
    return yellow_cab.dataset_and_tables_tasks(project, location, DATASET, (
        ("create_clean_table", CLEAN_TABLE, clean_table_resource()),
        ("create_rejected_table", REJECTED_TABLE, rejected_table_resource()),
    ))


# -- files -------------------------------------------------------------------------------------
def staging_table_name(uri: str, generation: int) -> str:
    return f"{STAGING_PREFIX}{hashlib.sha1(f'{uri}#{generation}'.encode()).hexdigest()[:16]}"


def file_plan(bucket: str, project: str, object_name: str, generation: int, prefix: str) -> dict:
    """What the main DAG does with one object: its staging table, where it goes on success or failure."""
    base = posixpath.basename(object_name)
    uri = f"gs://{bucket}/{object_name}"
    staging_table = staging_table_name(uri, generation)
    return {"object_name": object_name, "generation": generation, "source_uri": uri,
            "staging_table": staging_table, "staging_table_id": f"{project}.{DATASET}.{staging_table}",
            "archive_object": f"{prefix}{ARCHIVE}{base}", "error_object": f"{prefix}{ERRORS}{base}"}


def list_files(bucket: str, project: str, prefix: str = PREFIX, conn_id: str = config.GCP_CONN_ID) -> list[dict]:
    """A `file_plan` for every .csv object directly under `<prefix>data/`, by name."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    if not prefix.endswith("/"):
        prefix += "/"
    blobs = GCSHook(gcp_conn_id=conn_id).get_conn().list_blobs(bucket, prefix=prefix + DATA, delimiter="/")
    plans = [file_plan(bucket, project, b.name, int(b.generation), prefix)
             for b in blobs if yellow_cab.source_format(b.name) == "CSV"]
    return sorted(plans, key=lambda p: p["object_name"])


def _client(project: str, conn_id: str):
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    return BigQueryHook(gcp_conn_id=conn_id, use_legacy_sql=False).get_client(project_id=project)


def _source_params(source_uri: str, generation: int) -> list:
    from google.cloud import bigquery

    return [bigquery.ScalarQueryParameter("uri", "STRING", source_uri),
            bigquery.ScalarQueryParameter("generation", "INT64", int(generation))]


def load_staging(bucket: str, object_name: str, generation: int, staging_table: str, *, project: str,
                 conn_id: str = config.GCP_CONN_ID) -> int:
    """The CSV into `yc_retry.<staging_table>` (created here, every column STRING); returns its rows.
    RetryFileError when the object is gone or BigQuery cannot read it as CSV."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from google.api_core import exceptions
    from google.cloud import bigquery

    obj = yellow_cab.GcsObject(bucket, object_name, int(generation))
    client = _client(project, conn_id)
    try:
        columns = yellow_cab.file_columns(GCSHook(gcp_conn_id=conn_id).get_conn(), obj, "CSV")
    except yellow_cab.ObjectLoadError as exc:
        raise RetryFileError(str(exc)) from None
    staging = f"{project}.{DATASET}.{staging_table}"
    table = bigquery.Table(staging, schema=[bigquery.SchemaField(n, "STRING") for n, _ in columns])
    table.expires = datetime.now(timezone.utc) + STAGING_TTL
    client.delete_table(staging, not_found_ok=True)
    client.create_table(table)
    load_config = bigquery.LoadJobConfig(source_format="CSV", skip_leading_rows=1, allow_quoted_newlines=True,
                                         write_disposition="WRITE_TRUNCATE", create_disposition="CREATE_NEVER")
    try:
        client.load_table_from_uri(obj.uri, staging, job_config=load_config).result()
    except (exceptions.BadRequest, exceptions.NotFound) as exc:
        raise RetryFileError(f"{obj}: BigQuery could not load it as CSV: {exc}") from None
    rows = query_scalar(client, f"SELECT count(*) FROM `{staging}`")
    log.info("Staged %s: %d rows, columns %s, in %s", obj, rows, [n for n, _ in columns], staging)
    return rows


# -- cleaning (the subflow) ----------------------------------------------------------------------
def mapped_columns(staging_columns: list[str], source: str) -> list[tuple[str, str, str]]:
    """(staging column, trips column, BigQuery type) for the file's known columns, matched by name
    case-insensitively (TLC spells `airport_fee` both ways). RetryFileError naming `source` when a
    required column is missing; unknown columns are logged and left out."""
    known = {name.lower(): (name, bq_type) for name, bq_type in yellow_cab.YELLOW_COLUMNS}
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
    return sql.render(__file__, "retry_insert_clean", clean_table=table_ref(project, DATASET, CLEAN_TABLE),
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
        "count": sql.render(__file__, "retry_count_kept", keep=keep, staging_table=staging),
        "clean": sql.render(__file__, "retry_insert_clean", clean_table=table_ref(project, DATASET, CLEAN_TABLE),
                            columns=", ".join(clean_into), values=", ".join(clean_select), cleaning=SAFE_CAST,
                            staging_table=staging, keep=keep),
        "rejected": sql.render(__file__, "retry_insert_rejected",
                               rejected_table=table_ref(project, DATASET, REJECTED_TABLE),
                               columns=", ".join(rejected_into), values=", ".join(f"`{s}`" for s, _, _ in columns),
                               reason=reason, staging_table=staging, keep=keep),
    }


def delete_rows(client, project: str, source_uri: str, generation: int) -> dict[str, int]:
    """Delete that object generation's rows from both tables; returns rows deleted per table."""
    deleted = {}
    for table in (CLEAN_TABLE, REJECTED_TABLE):
        job = client.query(sql.render(__file__, "retry_delete_source_rows", table=table_ref(project, DATASET, table)),
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

    client = _client(project, conn_id)
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
    client = _client(project, conn_id)
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
    deleted = delete_rows(_client(project, conn_id), project, source_uri, int(generation))
    log.info("Rolled back %s#%s: deleted %s", source_uri, generation, deleted)
    return deleted
