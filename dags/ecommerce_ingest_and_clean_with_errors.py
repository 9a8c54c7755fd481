"""ecommerce_ingest_and_clean_with_errors — a retail export from GCS into BigQuery, cleaned,
with every rejected row kept and the row count reconciled (walkthrough 3_1, Kestra namespace gcp.ecommerce).

`gs://<bucket>/data.csv` → `raw.transactions_raw` → `clean.transactions` and `clean.transactions_errors`
(the rules: include/zoomcamp/walkthrough/ecommerce.py); fails unless raw = clean + errors, row for row.
Details: docs/walkthrough.md#ecommerce_ingest_and_clean_with_errors-3_1
"""
from airflow.providers.google.cloud.operators.bigquery import (
    BigQueryCreateEmptyDatasetOperator,
    BigQueryInsertJobOperator,
)
from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator
from airflow.sdk import DAG, task

from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.gcp.bigquery import query_job
from include.zoomcamp.walkthrough import ECOMMERCE_TAGS, ecommerce

PROJECT = templates.PROJECT_ID

with DAG(
    dag_id="ecommerce_ingest_and_clean_with_errors",
    schedule=None,
    max_active_runs=1,  # two runs would rebuild the same tables at once
    default_args=GCP_DEFAULT_ARGS,
    tags=ECOMMERCE_TAGS,
    doc_md=__doc__,
):
    create_datasets = [
        BigQueryCreateEmptyDatasetOperator(
            task_id=f"create_dataset_{dataset}", dataset_id=dataset, project_id=PROJECT,
            location=templates.LOCATION, if_exists="ignore",
        )
        for dataset in (ecommerce.RAW_DATASET, ecommerce.CLEAN_DATASET)
    ]

    @task
    def check_export(bucket: str) -> dict:
        return ecommerce.check_export(bucket)

    load_raw = GCSToBigQueryOperator(
        task_id="load_raw",
        bucket=templates.BUCKET, source_objects=[ecommerce.DATA_OBJECT],
        destination_project_dataset_table=f"{PROJECT}.{ecommerce.RAW_DATASET}.{ecommerce.RAW_TABLE}",
        schema_fields=ecommerce.raw_schema_fields(), source_format="CSV", skip_leading_rows=1,
        allow_quoted_newlines=True, max_bad_records=0, autodetect=False,
        write_disposition="WRITE_TRUNCATE", create_disposition="CREATE_IF_NEEDED", project_id=PROJECT,
    )
    build_clean = BigQueryInsertJobOperator(
        task_id="build_clean",
        configuration=query_job(ecommerce.clean_table_sql(PROJECT)),
        project_id=PROJECT,
    )
    build_errors = BigQueryInsertJobOperator(
        task_id="build_errors",
        configuration=query_job(ecommerce.errors_table_sql(PROJECT)),
        project_id=PROJECT,
    )

    @task
    def check_raw_equals_clean_plus_errors(project: str) -> dict:
        return ecommerce.reconcile(project)

    create_datasets >> check_export(templates.BUCKET) >> load_raw >> [build_clean, build_errors]
    [build_clean, build_errors] >> check_raw_equals_clean_plus_errors(PROJECT)
