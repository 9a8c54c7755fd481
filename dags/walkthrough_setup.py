"""walkthrough_setup — what the Kestra-on-GCP walkthrough's flows need (run once; idempotent).

Creates bucket `GCP_BUCKET_NAME` and the walkthrough's datasets; with param `upload_samples` (default true)
it uploads generated sample inputs (include/zoomcamp/walkthrough/samples.py). On GCP, upload TLC's own files.
Details: docs/walkthrough.md#walkthrough_setup
"""
from airflow.providers.google.cloud.operators.bigquery import BigQueryCreateEmptyDatasetOperator
from airflow.providers.google.cloud.operators.gcs import GCSCreateBucketOperator
from airflow.sdk import DAG, Param, task

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.walkthrough import samples

DATASETS = ("kestra_test", "raw", "clean", config.YELLOW_CAB_DATASET, config.YC_RETRY_DATASET)

with DAG(
    dag_id="walkthrough_setup",
    schedule=None,
    params={"upload_samples": Param(True, type="boolean",
                                    description="Upload generated sample inputs (yellow-cab Parquet, zone lookup)")},
    default_args=GCP_DEFAULT_ARGS,
    tags=[config.WALKTHROUGH_TAG],
    doc_md=__doc__,
):
    create_bucket = GCSCreateBucketOperator(
        task_id="create_bucket", bucket_name=templates.BUCKET, project_id=templates.PROJECT_ID,
        location=templates.LOCATION,
    )
    create_datasets = [
        BigQueryCreateEmptyDatasetOperator(
            task_id=f"create_dataset_{dataset.lower()}", dataset_id=dataset, project_id=templates.PROJECT_ID,
            location=templates.LOCATION, if_exists="ignore",
        )
        for dataset in DATASETS
    ]

    @task
    def upload_samples(bucket: str, params=None) -> dict[str, str]:
        if not params["upload_samples"]:
            print("Param upload_samples is false: nothing uploaded")
            return {}
        return samples.upload_samples(bucket)

    create_bucket >> create_datasets
    create_bucket >> upload_samples(templates.BUCKET)
