"""Yellow-cab files from GCS into BigQuery `YellowCab.raw_data` (Kestra-on-GCP walkthrough).

`load_object(bucket, object_name, generation, ...)` loads one Parquet or CSV object (format from
its extension) exactly once per object generation:

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

Every task that loads (`load_file_task`: 3_2, 3_3, 3_5 and its reconciliation) takes the one slot of
the pool `yellow_cab_raw_loads`: BigQuery runs two INSERTs into one table side by side, each blind
to the other's rows, so the check in 3 is exact only while loads take turns. It makes a retry, a
duplicate event or a second DAG insert nothing twice.

Dataset and both tables are created by `create_tables_tasks` (used by `event-file-ingest-setup`,
`yellow_cab_sequential_ingest` and `yellow_cab_main`); the last two list and load with the tasks
`list_files_task` and `load_file_task` make: bqemulator 1.1.0 can load Parquet into an existing table only.
"""
from __future__ import annotations

import hashlib
import logging
import posixpath
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from include.zoomcamp import config, sql
from include.zoomcamp.errors import PermanentError
from include.zoomcamp.gcp.bigquery import job_config, query_scalar, table_ref

log = logging.getLogger(__name__)

RAW_TABLE = "raw_data"
INGEST_LOG_TABLE = "ingest_log"
FORMATS = {".parquet": "PARQUET", ".csv": "CSV"}
STAGING_TTL = timedelta(hours=6)  # a staging table left by a crash expires by itself

# TLC's current yellow trip Parquet schema (2025: cbd_congestion_fee added; 2024 spells Airport_fee,
# 2023 airport_fee). BigQuery names are case-insensitive, so one column takes both spellings.
YELLOW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("VendorID", "INTEGER"),
    ("tpep_pickup_datetime", "TIMESTAMP"),
    ("tpep_dropoff_datetime", "TIMESTAMP"),
    ("passenger_count", "INTEGER"),
    ("trip_distance", "FLOAT"),
    ("RatecodeID", "INTEGER"),
    ("store_and_fwd_flag", "STRING"),
    ("PULocationID", "INTEGER"),
    ("DOLocationID", "INTEGER"),
    ("payment_type", "INTEGER"),
    ("fare_amount", "FLOAT"),
    ("extra", "FLOAT"),
    ("mta_tax", "FLOAT"),
    ("tip_amount", "FLOAT"),
    ("tolls_amount", "FLOAT"),
    ("improvement_surcharge", "FLOAT"),
    ("total_amount", "FLOAT"),
    ("congestion_surcharge", "FLOAT"),
    ("Airport_fee", "FLOAT"),
    ("cbd_congestion_fee", "FLOAT"),
)
SOURCE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("source_uri", "STRING", "gs://bucket/object the row was loaded from"),
    ("source_generation", "INTEGER", "GCS generation of that object"),
)
INGEST_LOG_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("bucket", "STRING", "GCS bucket"),
    ("object_name", "STRING", "object name"),
    ("generation", "INTEGER", "object generation (one load per generation)"),
    ("event_type", "STRING", "GCS event that announced it (manual-run without one)"),
    ("source_format", "STRING", "PARQUET or CSV"),
    ("rows_loaded", "INTEGER", "rows inserted into raw_data"),
    ("run_id", "STRING", "Airflow run that loaded it"),
    ("loaded_at", "TIMESTAMP", "when"),
)
_CAST = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "STRING": "STRING", "TIMESTAMP": "TIMESTAMP",
         "BOOLEAN": "BOOL", "DATE": "DATE", "NUMERIC": "NUMERIC"}


class ObjectLoadError(PermanentError):
    """A file BigQuery refused (truncated, not Parquet/CSV, wrong columns): retrying will not help."""


@dataclass(frozen=True)
class GcsObject:
    bucket: str
    name: str
    generation: int | None

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"

    def __str__(self) -> str:  # how logs and errors name it
        return f"{self.uri}#{self.generation}" if self.generation is not None else self.uri


def source_format(object_name: str) -> str | None:
    """PARQUET or CSV by extension (case-insensitive); None for anything else."""
    return FORMATS.get(posixpath.splitext(object_name)[1].lower())


def raw_table_resource() -> dict:
    fields = [{"name": n, "type": t, "mode": "NULLABLE"} for n, t in YELLOW_COLUMNS]
    fields += [{"name": n, "type": t, "mode": "NULLABLE", "description": d} for n, t, d in SOURCE_COLUMNS]
    return {"schema": {"fields": fields},
            "description": "Yellow-cab trips as uploaded to GCS; one load per object generation"}


def ingest_log_resource() -> dict:
    fields = [{"name": n, "type": t, "mode": "NULLABLE", "description": d} for n, t, d in INGEST_LOG_COLUMNS]
    return {"schema": {"fields": fields}, "description": "Objects loaded into raw_data (bucket, object, generation)"}


def dataset_and_tables_tasks(project: str, location: str, dataset: str, tables: tuple[tuple[str, str, dict], ...]):
    """In the DAG being defined: task `create_dataset` >> one task per (task_id, table_id, resource),
    each succeeding when its resource exists (project/location may be templates). Returns (first, last tasks)."""
    from airflow.providers.google.cloud.operators.bigquery import (
        BigQueryCreateEmptyDatasetOperator,
        BigQueryCreateTableOperator,
    )

    create_dataset = BigQueryCreateEmptyDatasetOperator(
        task_id="create_dataset", dataset_id=dataset, project_id=project, location=location, if_exists="ignore",
    )
    created = [
        BigQueryCreateTableOperator(
            task_id=task_id, project_id=project, dataset_id=dataset, table_id=table_id,
            table_resource=resource, if_exists="ignore",
        )
        for task_id, table_id, resource in tables
    ]
    create_dataset >> created
    return create_dataset, created


def create_tables_tasks(project: str, location: str, dataset: str = config.YELLOW_CAB_DATASET):
    """`create_dataset` >> [`create_raw_table`, `create_ingest_log`]: what the yellow-cab ingests write."""
    return dataset_and_tables_tasks(project, location, dataset, (
        ("create_raw_table", RAW_TABLE, raw_table_resource()),
        ("create_ingest_log", INGEST_LOG_TABLE, ingest_log_resource()),
    ))


# pyarrow.types predicate -> BigQuery type; anything else loads as STRING.
_BQ_TYPE_OF_ARROW = (("is_integer", "INTEGER"), ("is_floating", "FLOAT"), ("is_boolean", "BOOLEAN"),
                     ("is_timestamp", "TIMESTAMP"), ("is_date", "DATE"), ("is_decimal", "NUMERIC"))


def _bq_type(arrow_type) -> str:
    import pyarrow.types as pat

    return next((bq for check, bq in _BQ_TYPE_OF_ARROW if getattr(pat, check)(arrow_type)), "STRING")


def file_columns(storage_client, obj: GcsObject, fmt: str) -> list[tuple[str, str]]:
    """(name, BigQuery type) of the file's columns, read from GCS without downloading the whole file."""
    import pyarrow.parquet as pq

    blob = storage_client.bucket(obj.bucket).blob(obj.name, generation=obj.generation)
    try:
        with blob.open("rb") as fh:
            if fmt == "PARQUET":
                return [(f.name, _bq_type(f.type)) for f in pq.read_schema(fh)]
            header = fh.readline().decode("utf-8-sig").strip()
    except Exception as exc:  # noqa: BLE001 - the message names the object, the type says why
        from google.api_core import exceptions

        if isinstance(exc, exceptions.GoogleAPICallError) and not isinstance(exc, exceptions.NotFound):
            raise  # GCS itself failed: let the task retry
        raise ObjectLoadError(f"{obj}: cannot read its {fmt} columns: {type(exc).__name__}: {exc}") from exc
    names = [n.strip().strip('"') for n in header.split(",")] if header else []
    if not names or not all(names):
        raise ObjectLoadError(f"{obj}: no CSV header")
    return [(n, "STRING") for n in names]


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
    sql = (f"SELECT DISTINCT object_name, generation FROM {table_ref(project, dataset, INGEST_LOG_TABLE)} "
           "WHERE bucket = @bucket AND STARTS_WITH(object_name, @prefix)")
    rows = client.query(sql, job_config=job_config(params)).result()
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
    return sql.render(__file__, "yellow_cab_insert_raw", raw_table=table_ref(project, dataset, RAW_TABLE),
                      columns=", ".join(into), values=", ".join(select),
                      staging_table=table_ref(project, dataset, staging)), dropped


def ingest_log_sql(project: str, dataset: str, columns) -> str:
    """One row into ingest_log from query parameters named after `columns`, unless it holds that generation."""
    return sql.render(__file__, "yellow_cab_insert_ingest_log", log_table=table_ref(project, dataset, INGEST_LOG_TABLE),
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
    from google.cloud import bigquery

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
    staging = f"{project}.{dataset}.{staging_table_name(obj, load)}"
    table = bigquery.Table(staging, schema=[bigquery.SchemaField(n, t) for n, t in columns])
    table.expires = datetime.now(timezone.utc) + STAGING_TTL
    client.delete_table(staging, not_found_ok=True)  # this instance's own, left by an earlier try
    client.create_table(table)
    try:
        load_config = bigquery.LoadJobConfig(
            source_format=fmt, write_disposition="WRITE_TRUNCATE", create_disposition="CREATE_NEVER",
            autodetect=False, **({"skip_leading_rows": 1, "allow_quoted_newlines": True} if fmt == "CSV" else {}))
        try:
            client.load_table_from_uri(obj.uri, staging, job_config=load_config).result()
        except (exceptions.BadRequest, exceptions.NotFound) as exc:
            raise ObjectLoadError(f"{obj}: BigQuery could not load it as {fmt}: {exc}") from exc
        staged = query_scalar(client, f"SELECT count(*) FROM `{staging}`")
        sql, dropped = insert_select_sql(project, dataset, staging.rsplit(".", 1)[1], columns, fmt, obj)
        if dropped:
            log.warning("%s: columns not in %s, left out: %s", obj, RAW_TABLE, dropped)
        try:
            job = client.query(sql, job_config=job_config(_key_params(obj)))
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


def list_data_objects(bucket: str, prefix: str, conn_id: str = config.GCP_CONN_ID,
                         formats: tuple[str, ...] = ("PARQUET",)) -> list[dict]:
    """Every object of `formats` (by extension) under `prefix` (any depth), by name: `{"bucket", "object_name",
    "generation"}` (the generation listed is the one loaded, even if the object is replaced meanwhile)."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    blobs = GCSHook(gcp_conn_id=conn_id).get_conn().list_blobs(bucket, prefix=prefix)
    objects = [{"bucket": bucket, "object_name": b.name, "generation": int(b.generation)}
               for b in blobs if source_format(b.name) in formats]
    return sorted(objects, key=lambda o: o["object_name"])


def list_files_task(prefix: str):
    """The `list_files` task of the ingest DAGs: `list_data_objects` under `prefix`, logged."""
    from airflow.sdk import task

    @task(task_id="list_files")
    def list_files(bucket: str) -> list[dict]:
        objects = list_data_objects(bucket, prefix)
        print(f"{len(objects)} Parquet file(s) under gs://{bucket}/{prefix}: {[o['object_name'] for o in objects]}")
        return objects

    return list_files


def load_file_task(files_at_once: int | None, task_id: str = "load_file", event_type: str = "list"):
    """The loading task of every DAG writing raw_data, to be mapped over objects (`{"bucket", "object_name",
    "generation"}`, and an `event_type` for ingest_log, else `event_type`): `load_object` for one object, in
    the pool `yellow_cab_raw_loads`, at most `files_at_once` at a time per run (None: no cap of its own),
    each mapped instance named after its object. A file BigQuery cannot read fails its instance at once
    (AirflowFailException naming it). Returns the object with `load_object`'s answer."""
    from airflow.sdk import get_current_context, task

    @task(task_id=task_id, map_index_template="{{ object_name }}", max_active_tis_per_dagrun=files_at_once,
          pool=config.YELLOW_CAB_RAW_LOAD_POOL)
    def load_file(obj: dict, project: str) -> dict:
        context = get_current_context()
        context["object_name"] = obj["object_name"]  # names the mapped instance in the UI
        ti = context["ti"]
        result = load_object(obj["bucket"], obj["object_name"], obj["generation"], project=project,
                             event_type=obj.get("event_type") or event_type,
                             load=LoadRun(ti.dag_id, ti.run_id, ti.map_index))
        return {**obj, **result}

    return load_file


ARCHIVE_PREFIX = "yellow-cab-archive/"  # walkthrough 3_3: where loaded files go once the subflow succeeded


def archive_moves(loads, prefix: str, archive_prefix: str = ARCHIVE_PREFIX) -> list[dict]:
    """GCSToGCSOperator kwargs moving each loaded (or already loaded) file from `prefix` to the same path
    under `archive_prefix`. `loads` are load_file's answers: a failed load has none, so it stays put."""
    moves = []
    for load in loads:
        if load["status"] not in ("loaded", "already_loaded"):
            continue
        name = load["object_name"]
        moves.append({"source_object": name, "destination_object": archive_prefix + name.removeprefix(prefix)})
    return sorted(moves, key=lambda m: m["source_object"])
