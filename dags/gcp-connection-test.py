"""gcp-connection-test — is the GCP connection usable? (walkthrough 1_3, Kestra namespace dev.testing)

Writes `test/hello.txt` to bucket `GCP_BUCKET_NAME` through connection `google_cloud_default` and
reads it back; a missing bucket or an unusable connection fails at once, naming both.
Details: docs/walkthrough.md#gcp-connection-test-1_3
"""
from airflow.sdk import DAG, task

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.walkthrough import DEV_TESTING_TAGS, gcs_connection

GCP_CONN_ID = config.GCP_CONN_ID

with DAG(
    dag_id="gcp-connection-test",
    schedule=None,
    default_args=GCP_DEFAULT_ARGS,
    tags=DEV_TESTING_TAGS,
    doc_md=__doc__,
):

    @task
    def write_hello(bucket: str) -> str:
        return gcs_connection.write_greeting(bucket, GCP_CONN_ID)

    @task
    def read_hello_back(bucket: str) -> str:
        return gcs_connection.read_greeting(bucket, GCP_CONN_ID)

    write_hello(templates.BUCKET) >> read_hello_back(templates.BUCKET)
