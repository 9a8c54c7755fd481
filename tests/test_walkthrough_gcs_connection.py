"""Walkthrough 1_3 (`gcp-connection-test`) on the GCS emulator, through the same hook as on GCP."""
from __future__ import annotations

import json

import pytest

from include.zoomcamp import config
from include.zoomcamp.walkthrough.gcs_connection import GREETING, TEST_OBJECT
from tests.conftest import run_dag

DAG_ID = "gcp-connection-test"
PROJECT = config.GCP_DEFAULTS[config.GCP_PROJECT_ID_VAR]
BUCKET = config.GCP_DEFAULTS[config.GCP_BUCKET_NAME_VAR]


@pytest.fixture(scope="module")
def storage(services):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    client = gcs.Client(project=PROJECT, credentials=AnonymousCredentials())
    if client.lookup_bucket(BUCKET) is None:
        client.create_bucket(BUCKET)
    return client


def test_writes_and_reads_back_the_greeting(dagbag, storage):
    if (old := storage.bucket(BUCKET).get_blob(TEST_OBJECT)) is not None:
        old.delete()
    run = run_dag(dagbag.get_dag(DAG_ID))
    assert run.state == "success"
    assert storage.bucket(BUCKET).get_blob(TEST_OBJECT).download_as_text() == GREETING
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"write_hello": "success", "read_hello_back": "success"}


@pytest.mark.parametrize(("env", "message"), [
    ({"AIRFLOW_VAR_GCP_BUCKET_NAME": "no-such-bucket-here"},
     "bucket 'no-such-bucket-here' does not exist or is not visible to connection 'google_cloud_default'"),
    ({"AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(
        {"conn_type": "google_cloud_platform", "extra": {"key_path": "/nonexistent/key.json"}})},
     "bucket 'zoomcamp-local-bucket' through connection 'google_cloud_default': the connection's credentials "
     "cannot be loaded: FileNotFoundError"),
    ({"AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": ""},  # an empty URI: no such connection
     "connection 'google_cloud_default' is not defined"),
], ids=["missing-bucket", "missing-key-file", "undefined-connection"])
def test_fails_at_once_naming_bucket_and_connection(dagbag, storage, monkeypatch, capsys, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    bucket = env.get("AIRFLOW_VAR_GCP_BUCKET_NAME", BUCKET)
    run = run_dag(dagbag.get_dag(DAG_ID))  # with the DAG's retries: the failure must not wait for them
    assert run.state == "failed"
    ti = run.get_task_instance("write_hello")
    assert ti.state == "failed" and ti.try_number == 1
    log = capsys.readouterr().out  # the task log, as dag.test() prints it
    assert "GcsConnectionError: Cannot " in log
    assert message in log and f"{bucket!r}" in log
