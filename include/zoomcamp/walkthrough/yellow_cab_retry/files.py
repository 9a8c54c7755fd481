"""The files of walkthrough 3_4 under `<prefix>data/` in GCS: what `yellow_cab_retry_main` does with each (its
staging table, where it goes on success or failure), and the load of a CSV into its staging table (every column
STRING, named by the header, so nothing can fail on a value yet; a file BigQuery cannot read as CSV fails here).
"""
from __future__ import annotations

import hashlib
import logging
import posixpath

from include.zoomcamp import config
from include.zoomcamp.errors import PermanentError
from include.zoomcamp.gcp.bigquery import load_file_to_staging
from include.zoomcamp.walkthrough.yellow_cab.files import GcsObject, ObjectLoadError, file_columns, source_format
from include.zoomcamp.walkthrough.yellow_cab_retry.tables import DATASET, bigquery_client

log = logging.getLogger(__name__)

MAIN_DAG_ID = "yellow_cab_retry_main"
PREFIX = "yc-retry/"  # the walkthrough's folder; data/, archive/ and errors/ below it
DATA, ARCHIVE, ERRORS = "data/", "archive/", "errors/"
STAGING_PREFIX = "stage_"


class RetryFileError(PermanentError):
    """The file cannot be cleaned as it is: a retry would read the same."""


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
             for b in blobs if source_format(b.name) == "CSV"]
    return sorted(plans, key=lambda p: p["object_name"])


def load_staging(bucket: str, object_name: str, generation: int, staging_table: str, *, project: str,
                 conn_id: str = config.GCP_CONN_ID) -> int:
    """The CSV into `yc_retry.<staging_table>` (created here, every column STRING); returns its rows.
    RetryFileError when the object is gone or BigQuery cannot read it as CSV."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from google.api_core import exceptions

    obj = GcsObject(bucket, object_name, int(generation))
    client = bigquery_client(project, conn_id)
    try:
        columns = file_columns(GCSHook(gcp_conn_id=conn_id).get_conn(), obj, "CSV")
    except ObjectLoadError as exc:
        raise RetryFileError(str(exc)) from None
    staging = f"{project}.{DATASET}.{staging_table}"
    try:
        rows = load_file_to_staging(client, obj.uri, staging, [(name, "STRING") for name, _ in columns], "CSV")
    except (exceptions.BadRequest, exceptions.NotFound) as exc:
        raise RetryFileError(f"{obj}: BigQuery could not load it as CSV: {exc}") from None
    log.info("Staged %s: %d rows, columns %s, in %s", obj, rows, [n for n, _ in columns], staging)
    return rows
