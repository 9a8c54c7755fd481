"""07_gcp_setup — create the course's bucket and dataset (course flow 07).

Bucket `GCP_BUCKET_NAME` and dataset `GCP_DATASET` of the Variables 06_gcp_kv sets; any number of runs.

Details: docs/course.md#07_gcp_setup
"""
from airflow.providers.google.cloud.operators.bigquery import BigQueryCreateEmptyDatasetOperator
from airflow.providers.google.cloud.operators.gcs import GCSCreateBucketOperator
from airflow.sdk import DAG

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates

with DAG(
    dag_id="07_gcp_setup",
    schedule=None,
    default_args=GCP_DEFAULT_ARGS,
    tags=[config.TAG],
    doc_md=__doc__,
):
    create_gcs_bucket = GCSCreateBucketOperator(
        task_id="create_gcs_bucket",
        bucket_name=templates.BUCKET,
        project_id=templates.PROJECT_ID,
        location=templates.LOCATION,
    )
    create_bq_dataset = BigQueryCreateEmptyDatasetOperator(
        task_id="create_bq_dataset",
        dataset_id=templates.DATASET,
        project_id=templates.PROJECT_ID,
        location=templates.LOCATION,
        if_exists="ignore",
    )
    create_gcs_bucket >> create_bq_dataset
