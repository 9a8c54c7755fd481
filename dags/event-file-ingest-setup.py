"""event-file-ingest-setup — what walkthrough 3_5's event-driven ingest needs (run once; idempotent).

Creates, each only when absent: the landing bucket, Pub/Sub topic `file-upload-events` and subscription
`file-upload-sub`, the bucket's notification to that topic, dataset `YellowCab` with `raw_data` and `ingest_log`.
Project and bucket are those `event-file-ingest` watches (fixed at parse time).
Details: docs/walkthrough.md#event-driven-ingest-3_5
"""
from airflow.providers.google.cloud.operators.gcs import GCSCreateBucketOperator
from airflow.providers.google.cloud.operators.pubsub import (
    PubSubCreateSubscriptionOperator,
    PubSubCreateTopicOperator,
)
from airflow.sdk import DAG, task

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.gcp.preflight import GcpPreflight
from include.zoomcamp.walkthrough import event_ingest
from include.zoomcamp.walkthrough.yellow_cab.tasks import create_tables_tasks

PROJECT = event_ingest.watched_project()
BUCKET = event_ingest.watched_bucket()
PARSED = {config.GCP_PROJECT_ID_VAR: PROJECT, config.GCP_BUCKET_NAME_VAR: BUCKET}
DATASET = config.YELLOW_CAB_DATASET

with DAG(
    dag_id="event-file-ingest-setup",
    schedule=None,
    default_args={**GCP_DEFAULT_ARGS, "pre_execute": GcpPreflight(watched=PARSED)},
    tags=[config.TAG, config.WALKTHROUGH_TAG, config.YELLOW_CAB_TAG],
    doc_md=__doc__,
):
    create_bucket = GCSCreateBucketOperator(
        task_id="create_bucket", bucket_name=BUCKET, project_id=PROJECT, location=templates.LOCATION,
    )
    create_topic = PubSubCreateTopicOperator(
        task_id="create_topic", project_id=PROJECT, topic=config.EVENT_TOPIC, fail_if_exists=False,
    )
    create_subscription = PubSubCreateSubscriptionOperator(
        task_id="create_subscription", project_id=PROJECT, topic=config.EVENT_TOPIC,
        subscription=config.EVENT_SUBSCRIPTION, ack_deadline_secs=config.EVENT_ACK_DEADLINE_SECONDS,
        fail_if_exists=False,
    )

    @task
    def create_bucket_notification() -> str:
        return event_ingest.ensure_bucket_notification(BUCKET, PROJECT)

    create_tables = create_tables_tasks(PROJECT, templates.LOCATION, DATASET)

    create_bucket >> create_topic >> create_subscription >> create_bucket_notification()
