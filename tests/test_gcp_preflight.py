"""The checks GCP tasks run first and the GCP error policy, through real task runs (`dag.test()`).

Real mode is this process's environment as `make run GCP=real` gives it (no emulator variable, mode
`real`, the course's values as AIRFLOW_VAR_GCP_*); the credentials are generated service-account keys
whose token endpoint is a loopback server refusing them as Google refuses a deleted key. No real GCP.
"""
from __future__ import annotations

import json
import uuid

import pytest

from include.zoomcamp import config
from include.zoomcamp.gcp import credentials
from tests.conftest import fresh_dag, run_dag
from tests.fixtures.gcp_keys import RefusingTokenEndpoint, service_account_key

PROJECT = "my-project-123"
FAIL_FAST_SECONDS = 15


@pytest.fixture
def real_mode(monkeypatch, tmp_path):
    """This process as Airflow's processes see it in real mode, with no credentials anywhere."""
    for name in ("STORAGE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST",
                 "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "GCE_METADATA_HOST", "GCE_METADATA_IP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(config.GCP_MODE_ENV, config.GCP_REAL)
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud Application Default Credentials file
    monkeypatch.setattr(credentials, "DMI_PRODUCT_NAME", tmp_path / "not-a-google-machine")
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps({"conn_type": "google_cloud_platform"}))
    monkeypatch.setenv("AIRFLOW_VAR_GCP_PROJECT_ID", PROJECT)
    monkeypatch.setenv("AIRFLOW_VAR_GCP_BUCKET_NAME", f"{PROJECT}-zoomcamp")
    return tmp_path


@pytest.fixture
def token_endpoint():
    with RefusingTokenEndpoint() as endpoint:
        yield endpoint


def _failed_first(run, task_id: str):
    ti = run.get_task_instance(task_id)
    assert run.state == "failed" and ti.state == "failed" and ti.try_number == 1, (run.state, ti.state, ti.try_number)
    print(f"{run.dag_id}.{task_id}: failed after {ti.duration:.1f} s, first try")
    assert ti.duration < FAIL_FAST_SECONDS, ti.duration
    return ti


@pytest.mark.parametrize(("dag_id", "task_id"), [("gcp-connection-test", "write_hello"),
                                                 ("07_gcp_setup", "create_gcs_bucket")])
def test_without_credentials_the_first_task_fails_at_once_saying_how_to_give_them(dagbag, real_mode, capsys,
                                                                                   dag_id, task_id):
    run = run_dag(dagbag.get_dag(dag_id))
    _failed_first(run, task_id)
    log = capsys.readouterr().out
    assert f"No usable GCP credentials for project {PROJECT} through connection 'google_cloud_default'" in log
    assert "has no key, GOOGLE_APPLICATION_CREDENTIALS is not set and there is no Application Default" in log
    assert "(2) GOOGLE_APPLICATION_CREDENTIALS=" in log and "`gcloud auth application-default login`" in log


def test_refused_keys_fail_at_once_and_the_connection_comes_before_gac(dagbag, real_mode, monkeypatch, capsys,
                                                                      token_endpoint):
    gac_email = f"from-gac@{PROJECT}.iam.gserviceaccount.com"
    gac_key = real_mode / "gac.json"
    gac_key.write_text(json.dumps(service_account_key(gac_email, PROJECT, token_endpoint.url)))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gac_key))
    run = run_dag(dagbag.get_dag("gcp-connection-test"))
    _failed_first(run, "write_hello")
    log = capsys.readouterr().out
    assert token_endpoint.issuers == [gac_email]
    assert ("Google refused the GCP credentials of connection 'google_cloud_default' (GOOGLE_APPLICATION_CREDENTIALS "
            f"{gac_key}: service account {gac_email}), project {PROJECT}: ('invalid_grant: Invalid JWT Signature."
            in log)

    conn_email = f"from-connection@{PROJECT}.iam.gserviceaccount.com"
    key = service_account_key(conn_email, PROJECT, token_endpoint.url)
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps(
        {"conn_type": "google_cloud_platform", "extra": {"keyfile_dict": json.dumps(key)}}))
    run = run_dag(dagbag.get_dag("07_gcp_setup"))
    _failed_first(run, "create_gcs_bucket")
    log = capsys.readouterr().out
    assert token_endpoint.issuers == [gac_email, conn_email]
    assert f"connection 'google_cloud_default' (connection 'google_cloud_default', key JSON: service account " \
           f"{conn_email})" in log
    assert key["private_key"].splitlines()[1] not in log


def test_an_unreachable_token_endpoint_fails_at_once(dagbag, real_mode, monkeypatch, capsys):
    from devstack.postgres import free_port

    key = service_account_key(f"sa@{PROJECT}.iam.gserviceaccount.com", PROJECT,
                              f"http://127.0.0.1:{free_port(0)}/token")  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps(
        {"conn_type": "google_cloud_platform", "extra": {"keyfile_dict": json.dumps(key)}}))
    run = run_dag(dagbag.get_dag("gcp-connection-test"))
    _failed_first(run, "write_hello")
    assert "Could not reach http://127.0.0.1:" in capsys.readouterr().out


def test_the_emulators_placeholder_project_is_refused_in_real_mode(dagbag, real_mode, monkeypatch, capsys,
                                                                   token_endpoint):
    monkeypatch.delenv("AIRFLOW_VAR_GCP_PROJECT_ID")
    key = service_account_key(f"sa@{PROJECT}.iam.gserviceaccount.com", PROJECT, token_endpoint.url)
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps(
        {"conn_type": "google_cloud_platform", "extra": {"keyfile_dict": json.dumps(key)}}))
    run = run_dag(dagbag.get_dag("gcp-connection-test"))
    _failed_first(run, "write_hello")
    assert "the project is 'zoomcamp-local', the emulators' placeholder: set GCP_PROJECT_ID in zoomcamp.env" \
        in capsys.readouterr().out
    assert token_endpoint.issuers == []  # refused before any token is asked for


def test_event_ingest_fails_when_the_variables_moved_away_from_what_it_watches(dagbag, monkeypatch, capsys):
    dag = dagbag.get_dag("event-file-ingest")  # parsed with the default bucket
    monkeypatch.setenv("AIRFLOW_VAR_GCP_BUCKET_NAME", "another-bucket")  # as if 06_gcp_kv had stored it since
    run = run_dag(dag)
    _failed_first(run, "collect_objects")
    log = capsys.readouterr().out
    assert ("Variable GCP_BUCKET_NAME is 'another-bucket' but this DAG was parsed with "
            f"'{config.GCP_DEFAULTS['GCP_BUCKET_NAME']}'") in log
    assert "in real mode put the value in zoomcamp.env and restart `make run`" in log


def test_06_refuses_to_change_a_value_set_in_the_environment(dagbag, monkeypatch, capsys):
    from airflow.models.variable import Variable

    before = Variable.get(config.GCP_BUCKET_NAME_VAR, default_var=None)
    monkeypatch.setenv("AIRFLOW_VAR_GCP_BUCKET_NAME", "my-bucket-1")
    conf = {**config.GCP_DEFAULTS, "GCP_BUCKET_NAME": "my-bucket-2"}
    run = run_dag(dagbag.get_dag("06_gcp_kv"), run_conf=conf)
    assert run.state == "failed" and run.get_task_instance("store_key_values").try_number == 1
    assert ("GCP_BUCKET_NAME is 'my-bucket-1' in Airflow's environment (AIRFLOW_VAR_GCP_BUCKET_NAME), which a "
            "stored Variable cannot change (asked: 'my-bucket-2'). In real GCP mode these come from zoomcamp.env") \
        in capsys.readouterr().out
    run = run_dag(dagbag.get_dag("06_gcp_kv"), run_conf={**conf, "GCP_BUCKET_NAME": "my-bucket-1"})
    assert run.state == "success"
    monkeypatch.delenv("AIRFLOW_VAR_GCP_BUCKET_NAME")
    assert Variable.get(config.GCP_BUCKET_NAME_VAR, default_var=None) == before  # nothing stored


def test_a_missing_bucket_fails_at_once_through_the_error_policy(dagbag, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW_VAR_GCP_BUCKET_NAME", "no-such-bucket-here")
    run = run_dag(dagbag.get_dag("yellow_cab_sequential_ingest"))  # the DAG's own retries
    _failed_first(run, "list_files")
    log = capsys.readouterr().out
    assert "Bucket 'no-such-bucket-here' does not exist or connection 'google_cloud_default' cannot see it" in log


def test_the_reconciliation_without_its_ingest_log_fails_at_once_saying_to_run_the_setup(services, monkeypatch, capsys):
    """An object under landing/, but no dataset YellowCab in the project: event-file-ingest-setup has not run."""
    from tests.fixtures.yellow_cab import storage_client

    client = storage_client()
    bucket = client.create_bucket(f"reconcile-{uuid.uuid4().hex[:8]}")
    try:
        bucket.blob(f"{config.EVENT_PREFIX}trips.csv").upload_from_string(b"VendorID\n1\n")
        monkeypatch.setenv("AIRFLOW_VAR_GCP_BUCKET_NAME", bucket.name)  # both fixed when the DAG is parsed
        monkeypatch.setenv("AIRFLOW_VAR_GCP_PROJECT_ID", "zoomcamp-no-setup")
        run = run_dag(fresh_dag("event-file-ingest-reconcile"))
        _failed_first(run, "list_unloaded")
    finally:
        for blob in client.list_blobs(bucket.name):
            blob.delete()
        bucket.delete()
    assert "IngestLogMissing" in (log := capsys.readouterr().out)
    assert ": run event-file-ingest-setup first" in log
