"""gcp-connection-test — is the GCP connection usable? (walkthrough 1_3, Kestra namespace dev.testing)

Writes `test/hello.txt` ("Hello from Airflow! GCP connection works!") to bucket `GCP_BUCKET_NAME`
(Variable set by 06_gcp_kv) through connection `google_cloud_default`, reads it back and checks
the text. A missing bucket, an undefined connection or unusable/insufficient credentials fail at
once with a message naming the bucket and the connection (in real GCP mode, missing or refused
credentials fail before the write, naming the three ways to give them); other errors are retried.
Check by hand too: `gsutil cat gs://<bucket>/test/hello.txt`.
"""
from airflow.sdk import DAG, task

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.walkthrough import gcs_connection

GCP_CONN_ID = config.GCP_CONN_ID

with DAG(
    dag_id="gcp-connection-test",
    schedule=None,
    default_args=GCP_DEFAULT_ARGS,
    tags=[config.WALKTHROUGH_TAG, config.DEV_TESTING_NAMESPACE],
    doc_md=__doc__,
):

    @task
    def write_hello(bucket: str) -> str:
        return gcs_connection.write_greeting(bucket, GCP_CONN_ID)

    @task
    def read_hello_back(bucket: str) -> str:
        return gcs_connection.read_greeting(bucket, GCP_CONN_ID)

    write_hello(templates.BUCKET) >> read_hello_back(templates.BUCKET)
