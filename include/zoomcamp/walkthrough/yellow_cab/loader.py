"""One yellow-cab file from GCS into BigQuery `YellowCab.raw_data`, exactly once per object generation.

`load_object(bucket, object_name, generation, ...)` loads one Parquet or CSV object (format from
its extension):

1. skip it when `YellowCab.ingest_log` already holds that generation (when only `raw_data` does, a
   load stopped between its insert and its log row: the row is written, nothing is inserted);
2. load it into a staging table of its own load (named after the object generation and the task
   instance: DAG, run, map index), created first with the file's own columns (Parquet: the footer's
   schema, read with ranged reads; CSV: the header, every column STRING) — a broken file fails
   here, and `raw_data` is untouched;
3. one `INSERT … SELECT … WHERE NOT EXISTS` into `raw_data`, which inserts nothing when rows of that
   (source_uri, source_generation) are there already; it matches columns by name
   case-insensitively (TLC's `airport_fee` and `Airport_fee` are the same column), casts to the
   table's types and adds `source_uri` (gs://bucket/object) and `source_generation`; columns the
   table lacks are logged and dropped, columns the file lacks stay NULL;
4. a row in `ingest_log` (unless one is there), then the staging table is dropped.

Every task that loads (`tasks.load_file_task`: 3_2, 3_3, 3_5 and its reconciliation) takes the one slot of
the pool `yellow_cab_raw_loads`: BigQuery runs two INSERTs into one table side by side, each blind
to the other's rows, so the check in 3 is exact only while loads take turns. It makes a retry, a
duplicate event or a second DAG insert nothing twice.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from include.zoomcamp import config, sql
from include.zoomcamp.gcp.bigquery import job_config, load_file_to_staging, query_scalar, table_ref
from include.zoomcamp.walkthrough.yellow_cab.files import GcsObject, ObjectLoadError, file_columns, source_format
from include.zoomcamp.walkthrough.yellow_cab.tables import (
    INGEST_LOG_COLUMNS,
    INGEST_LOG_TABLE,
    RAW_TABLE,
    YELLOW_COLUMNS,
)

log = logging.getLogger(__name__)


_CAST = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "STRING": "STRING", "TIMESTAMP": "TIMESTAMP",
         "BOOLEAN": "BOOL", "DATE": "DATE", "NUMERIC": "NUMERIC"}


def _key_params(obj: GcsObject) -> list:
    from google.cloud import bigquery

    return [bigquery.ScalarQueryParameter("bucket", "STRING", obj.bucket),
            bigquery.ScalarQueryParameter("name", "STRING", obj.name),
            bigquery.ScalarQueryParameter("uri", "STRING", obj.uri),
            bigquery.ScalarQueryParameter("generation", "INT64", obj.generation)]


def logged(client, obj: GcsObject, project: str, dataset: str) -> bool:
    """Whether `ingest_log` records this object generation."""
    return bool(query_scalar(client, f"SELECT count(*) FROM {table_ref(project, dataset, INGEST_LOG_TABLE)} "
                                "WHERE bucket = @bucket AND object_name = @name AND generation = @generation",
                        _key_params(obj)))


def rows_in_raw(client, obj: GcsObject, project: str, dataset: str) -> int:
    return query_scalar(client, f"SELECT count(*) FROM {table_ref(project, dataset, RAW_TABLE)} "
                           "WHERE source_uri = @uri AND source_generation = @generation", _key_params(obj))


def logged_generations(bucket: str, prefix: str, *, project: str, dataset: str = config.YELLOW_CAB_DATASET,
                       conn_id: str = config.GCP_CONN_ID) -> set[tuple[str, int]]:
    """(object name, generation) of every object under `prefix` of `bucket` that ingest_log records."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.cloud import bigquery

    client = BigQueryHook(gcp_conn_id=conn_id, use_legacy_sql=False).get_client(project_id=project)
    params = [bigquery.ScalarQueryParameter("bucket", "STRING", bucket),
              bigquery.ScalarQueryParameter("prefix", "STRING", prefix)]
    query = (f"SELECT DISTINCT object_name, generation FROM {table_ref(project, dataset, INGEST_LOG_TABLE)} "
             "WHERE bucket = @bucket AND STARTS_WITH(object_name, @prefix)")
    rows = client.query(query, job_config=job_config(params)).result()
    return {(name, int(generation)) for name, generation in rows}


def insert_select_sql(project: str, dataset: str, staging: str, columns: list[tuple[str, str]], fmt: str,
                      obj: GcsObject) -> tuple[str, list[str]]:
    """The INSERT … SELECT from staging into raw_data, and the file columns it leaves out. It inserts nothing
    when raw_data holds rows of this object generation already (query parameters @uri, @generation)."""
    targets = {name.lower(): (name, bq_type) for name, bq_type in YELLOW_COLUMNS}
    into, select, dropped = [], [], []
    for name, _ in columns:
        target = targets.pop(name.lower(), None)
        if target is None:
            dropped.append(name)
            continue
        expr = f"NULLIF(TRIM(`{name}`), '')" if fmt == "CSV" else f"`{name}`"
        into.append(f"`{target[0]}`")
        select.append(f"CAST({expr} AS {_CAST[target[1]]})")
    into += ["`source_uri`", "`source_generation`"]
    select += ["@uri", "@generation"]
    return sql.render(__file__, "insert_raw", raw_table=table_ref(project, dataset, RAW_TABLE),
                      columns=", ".join(into), values=", ".join(select),
                      staging_table=table_ref(project, dataset, staging)), dropped


def ingest_log_sql(project: str, dataset: str, columns) -> str:
    """One row into ingest_log from query parameters named after `columns`, unless it holds that generation."""
    return sql.render(__file__, "insert_ingest_log", log_table=table_ref(project, dataset, INGEST_LOG_TABLE),
                      columns=", ".join(columns), parameters=", ".join("@" + c for c in columns))


@dataclass(frozen=True)
class LoadRun:
    """The task instance loading an object: its ingest_log row names the run, its staging table all three."""
    dag_id: str
    run_id: str
    map_index: int = -1


def staging_table_name(obj: GcsObject, load: LoadRun) -> str:
    """The staging table of one load: one per object generation and task instance (DAG, run, map index), so
    two loads never share one; a retry of the same instance replaces its own."""
    key = "\n".join((str(obj), load.dag_id, load.run_id, str(load.map_index)))
    return f"_stage_{RAW_TABLE}_{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def _write_log(client, obj: GcsObject, project: str, dataset: str, *, event_type: str, fmt: str, rows: int,
               run_id: str) -> None:
    from google.cloud import bigquery

    row = {"bucket": obj.bucket, "object_name": obj.name, "generation": obj.generation, "event_type": event_type,
           "source_format": fmt, "rows_loaded": rows, "run_id": run_id, "loaded_at": datetime.now(timezone.utc)}
    types = {name: bq_type for name, bq_type, _ in INGEST_LOG_COLUMNS}
    params = [bigquery.ScalarQueryParameter(k, _CAST[types[k]], v) for k, v in row.items()]
    client.query(ingest_log_sql(project, dataset, list(row)),
                 job_config=job_config(params)).result()


def load_object(bucket: str, object_name: str, generation: int | str | None, *, project: str, load: LoadRun,
                dataset: str = config.YELLOW_CAB_DATASET, event_type: str = "",
                conn_id: str = config.GCP_CONN_ID) -> dict:
    """Load one object generation into `dataset.raw_data` once; returns what happened.

    `{"object": "gs://b/o#g", "status": "loaded" | "already_loaded" | "skipped", "rows": n}`.
    Objects that are neither .parquet nor .csv are skipped. A file BigQuery cannot read raises
    ObjectLoadError naming it, with raw_data unchanged; other errors (network, quota) propagate as they are.
    Callers hold the pool `yellow_cab_raw_loads` (see the module's doc).
    """
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from google.api_core import exceptions

    obj = GcsObject(bucket, object_name, int(generation) if generation not in (None, "") else None)
    fmt = source_format(object_name)
    if fmt is None:
        log.warning("Skipping %s: not a .parquet or .csv file", obj)
        return {"object": str(obj), "status": "skipped", "rows": 0}
    client = BigQueryHook(gcp_conn_id=conn_id, use_legacy_sql=False).get_client(project_id=project)
    storage = GCSHook(gcp_conn_id=conn_id).get_conn()
    if obj.generation is None:  # a manual load names an object, not a generation: take the live one
        blob = storage.bucket(bucket).get_blob(object_name)
        if blob is None:
            raise ObjectLoadError(f"{obj}: no such object")
        obj = GcsObject(bucket, object_name, int(blob.generation))
    already = {"object": str(obj), "status": "already_loaded", "rows": 0}
    if logged(client, obj, project, dataset):
        log.info("Skipping %s: this generation is already in %s.%s", obj, dataset, RAW_TABLE)
        return already
    if (present := rows_in_raw(client, obj, project, dataset)):
        log.info("Skipping %s: this generation is already in %s.%s (%d rows); writing its missing %s row",
                 obj, dataset, RAW_TABLE, present, INGEST_LOG_TABLE)
        _write_log(client, obj, project, dataset, event_type=event_type, fmt=fmt, rows=present, run_id=load.run_id)
        return already

    columns = file_columns(storage, obj, fmt)
    staging = f"{project}.{dataset}.{staging_table_name(obj, load)}"  # this task instance's own
    try:
        try:
            staged = load_file_to_staging(client, obj.uri, staging, columns, fmt)
        except (exceptions.BadRequest, exceptions.NotFound) as exc:
            raise ObjectLoadError(f"{obj}: BigQuery could not load it as {fmt}: {exc}") from exc
        insert, dropped = insert_select_sql(project, dataset, staging.rsplit(".", 1)[1], columns, fmt, obj)
        if dropped:
            log.warning("%s: columns not in %s, left out: %s", obj, RAW_TABLE, dropped)
        try:
            job = client.query(insert, job_config=job_config(_key_params(obj)))
            job.result()
        except exceptions.BadRequest as exc:  # e.g. a value that does not cast: nothing was inserted
            raise ObjectLoadError(f"{obj}: its rows do not fit {dataset}.{RAW_TABLE}: {exc}") from exc
        rows = job.num_dml_affected_rows or 0
        if staged and not rows:  # rows of this generation arrived meanwhile: another load holds them
            log.warning("Skipping %s: its rows reached %s.%s meanwhile, from another load; nothing inserted",
                        obj, dataset, RAW_TABLE)
            return already
        _write_log(client, obj, project, dataset, event_type=event_type, fmt=fmt, rows=rows, run_id=load.run_id)
    finally:
        client.delete_table(staging, not_found_ok=True)
    log.info("Loaded %s (%s): %d rows into %s.%s", obj, fmt, rows, dataset, RAW_TABLE)
    return {"object": str(obj), "status": "loaded", "rows": rows}
