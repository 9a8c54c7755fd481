"""The Airflow side of flows 04/05: one factory builds the manual DAG and the scheduled twins."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from airflow.sdk import get_current_context, task

from include.zoomcamp import config

log = logging.getLogger(__name__)


def load_taxi_month(month, conn_id: str, base_url: str) -> dict:
    """Download, verify and load one month; the local file is purged whatever happens."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from include.zoomcamp.taxi import postgres, source

    with tempfile.TemporaryDirectory(prefix="zoomcamp-taxi-") as workdir:
        downloaded = source.download(month.url(base_url), Path(workdir) / f"{month.file_name}.gz")
        conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
        try:
            report = postgres.unchanged_load(conn, month.schema, month.file_name, downloaded.md5)
            if report is None:
                report = postgres.load_month(conn, month.schema, month.file_name, downloaded, Path(workdir))
        finally:
            conn.close()
    log.info("Loaded %s into public.%s: %s bytes, %s rows in file, %s rows inserted%s", report.file,
             report.table, report.uncompressed_bytes, report.rows_in_file, report.rows_inserted,
             " (unchanged file already loaded: skipped the copy)" if report.skipped_unchanged else "")
    return report.as_dict()


def postgres_taxi_tasks(taxi: str | None = None) -> None:
    """Add the flow's tasks to the DAG being defined. `taxi` fixed means a scheduled twin."""
    from include.zoomcamp.taxi.common_tasks import BASE_URL, set_labels_task
    from include.zoomcamp.taxi.runs import month_of_run

    @task(pool=config.TAXI_LOAD_POOL)
    def extract_and_load(base_url: str) -> dict:
        return load_taxi_month(month_of_run(get_current_context(), taxi), config.POSTGRES_CONN_ID, base_url)

    set_labels_task(taxi) >> extract_and_load(BASE_URL)
