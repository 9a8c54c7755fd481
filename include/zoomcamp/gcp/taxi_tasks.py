"""Flows 08/09: one month of taxi data through GCS into BigQuery, built from provider operators.

plan → extract, verify, upload → create final table (if absent) → load the CSV into `<month>_ext`
→ create the monthly table with unique_row_id → plan the MERGE (the month's partitions) → MERGE.
The same tasks serve the manual DAG (taxi from params) and the scheduled twins (taxi fixed).
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from airflow.providers.google.cloud.operators.bigquery import (
    BigQueryCreateTableOperator,
    BigQueryInsertJobOperator,
)
from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator
from airflow.sdk import get_current_context, task

from include.zoomcamp import config
from include.zoomcamp.gcp import bigquery_sql, templates
from include.zoomcamp.gcp.bigquery import query_job

log = logging.getLogger(__name__)

def _plan(key: str) -> str:
    """A value of the `plan` task's XCom (the DAG renders templates as native objects)."""
    return "{{ ti.xcom_pull(task_ids='plan')['%s'] }}" % key


def final_table_resource(schema) -> dict:
    """The course's final table as a tables.insert resource: descriptions and DAY partitioning."""
    fields = [{"name": "unique_row_id", "type": "BYTES", "description": bigquery_sql.ROW_ID_DESCRIPTION},
              {"name": "filename", "type": "STRING", "description": bigquery_sql.FILENAME_DESCRIPTION}]
    fields += [{"name": c.name, "type": c.bq_type, "description": c.description} for c in schema.columns]
    return {"schema": {"fields": fields}, "timePartitioning": {"type": "DAY", "field": schema.pickup}}


def plan_month(month, project: str, dataset: str, bucket: str) -> dict:
    from include.zoomcamp.gcp import naming

    naming.validate_project(project)
    naming.validate_dataset(dataset)
    naming.validate_bucket(bucket)
    schema = month.schema
    monthly = bigquery_sql.monthly_table(schema, month.year, month.month)
    return {
        "taxi": month.taxi, "file": month.file_name, "project": project, "dataset": dataset, "bucket": bucket,
        "object": month.file_name, "gcs_uri": f"gs://{bucket}/{month.file_name}",
        "final_table": schema.table, "monthly_table": monthly, "ext_table": f"{project}.{dataset}.{monthly}_ext",
        "final_table_resource": final_table_resource(schema),
        "ext_schema_fields": [{"name": c.name, "type": c.bq_type} for c in schema.columns],
        "create_monthly_sql": bigquery_sql.create_monthly_table(schema, project, dataset, monthly, month.file_name),
    }


def extract_verify_upload(month, base_url: str, bucket: str, conn_id: str) -> dict:
    """Download and verify the month, upload the CSV to GCS; local files are purged in all cases."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from include.zoomcamp.taxi import source

    with tempfile.TemporaryDirectory(prefix="zoomcamp-gcp-") as workdir:
        downloaded = source.download(month.url(base_url), Path(workdir) / f"{month.file_name}.gz")
        csv_path = Path(workdir) / month.file_name
        csv = source.verify_gz_file(downloaded, month.schema, month.file_name, csv_path)
        GCSHook(gcp_conn_id=conn_id).upload(bucket_name=bucket, object_name=month.file_name,
                                            filename=str(csv_path), mime_type="text/csv")
    log.info("Uploaded gs://%s/%s: %s bytes, %s rows", bucket, month.file_name, csv.uncompressed_bytes, csv.rows)
    return {"file": month.file_name, "gcs_uri": f"gs://{bucket}/{month.file_name}",
            "uncompressed_bytes": csv.uncompressed_bytes, "rows_in_file": csv.rows}


def plan_merge(plan: dict, conn_id: str) -> str:
    """The MERGE statement for this month, restricted to the partitions of its pickup dates."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    from include.zoomcamp.taxi.schemas import schema_for

    schema = schema_for(plan["taxi"])
    client = BigQueryHook(gcp_conn_id=conn_id, use_legacy_sql=False).get_client(project_id=plan["project"])
    query = bigquery_sql.pickup_dates(schema, plan["project"], plan["dataset"], plan["monthly_table"])
    dates = [row[0] for row in client.query(query).result()]
    statement = bigquery_sql.merge_new_rows(schema, plan["project"], plan["dataset"], plan["monthly_table"], dates)
    log.info("MERGE over %d pickup-date partitions:\n%s", len(dates), statement)
    return statement


def scheduled_dag_args() -> dict:
    """The DAG arguments of the scheduled twins (flow 09) besides the schedule: GCP's defaults, and
    templates rendered as native objects, which these tasks need."""
    from include.zoomcamp.defaults import GCP_DEFAULT_ARGS

    return {"default_args": GCP_DEFAULT_ARGS, "render_template_as_native_obj": True}


def gcp_taxi_tasks(taxi: str | None = None) -> None:
    """Add flow 08's tasks to the DAG being defined (which must render templates as native objects)."""
    from include.zoomcamp.taxi.common_tasks import BASE_URL, set_labels_task
    from include.zoomcamp.taxi.runs import month_of_run

    @task
    def plan(project: str, dataset: str, bucket: str) -> dict:
        return plan_month(month_of_run(get_current_context(), taxi), project, dataset, bucket)

    @task
    def extract_and_upload(base_url: str, bucket: str) -> dict:
        month = month_of_run(get_current_context(), taxi)
        return extract_verify_upload(month, base_url, bucket, config.GCP_CONN_ID)

    @task
    def plan_merge_statement(plan_values: dict) -> str:
        return plan_merge(plan_values, config.GCP_CONN_ID)

    planned = plan(templates.PROJECT_ID, templates.DATASET, templates.BUCKET)
    create_final_table = BigQueryCreateTableOperator(
        task_id="create_final_table",
        project_id=_plan("project"), dataset_id=_plan("dataset"), table_id=_plan("final_table"),
        table_resource=_plan("final_table_resource"), if_exists="ignore",
    )
    load_month_to_ext_table = GCSToBigQueryOperator(
        task_id="load_month_to_ext_table",
        bucket=_plan("bucket"), source_objects=[_plan("object")],
        destination_project_dataset_table=_plan("ext_table"), schema_fields=_plan("ext_schema_fields"),
        source_format="CSV", skip_leading_rows=1, ignore_unknown_values=True, max_bad_records=0,
        write_disposition="WRITE_TRUNCATE", create_disposition="CREATE_IF_NEEDED", autodetect=False,
        project_id=_plan("project"),
    )
    create_monthly_table = BigQueryInsertJobOperator(
        task_id="create_monthly_table",
        configuration=query_job(_plan("create_monthly_sql")),
        project_id=_plan("project"),
    )
    merge_new_rows = BigQueryInsertJobOperator(
        task_id="merge_new_rows",
        configuration=query_job("{{ ti.xcom_pull(task_ids='plan_merge_statement') }}"),
        project_id=_plan("project"),
    )
    uploaded = extract_and_upload(BASE_URL, templates.BUCKET)
    merge_sql = plan_merge_statement(planned)
    (set_labels_task(taxi) >> planned >> uploaded >> create_final_table >> load_month_to_ext_table
     >> create_monthly_table >> merge_sql >> merge_new_rows)
