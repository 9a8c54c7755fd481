"""The GCP switch's parts without a running Airflow: zoomcamp.env, the environment each mode gives Airflow,
the discovery of credentials and its messages, and the explanation of GCP errors no retry can fix."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack import gcp
from devstack.__main__ import PORTS as devstack_ports
from devstack.settings import airflow_environment
from include.zoomcamp import config
from include.zoomcamp.gcp import credentials, errors
from tests.fixtures.gcp_keys import service_account_key

PROJECT = "my-project-123"
EMAIL = f"zoomcamp@{PROJECT}.iam.gserviceaccount.com"


# -- zoomcamp.env ---------------------------------------------------------------------------------

def test_settings_file_keys_comments_quotes_and_export():
    settings = gcp.parse_settings(
        "# my settings\n\nZOOMCAMP_GCP=real\nexport GCP_PROJECT_ID='my-project-123'\n"
        'GCP_BUCKET_NAME="my-bucket"  \nGCP_DATASET=trips   # the course\'s is zoomcamp\nGCP_LOCATION=\n')
    assert settings.mode == "real" and settings.real
    assert dict(settings.values) == {"GCP_PROJECT_ID": PROJECT, "GCP_BUCKET_NAME": "my-bucket", "GCP_DATASET": "trips"}


def test_no_settings_file_means_the_emulators(tmp_path):
    settings = gcp.read_settings(tmp_path / "zoomcamp.env")
    assert settings.mode == "emulators" and not settings.real and dict(settings.values) == {}


@pytest.mark.parametrize(("text", "message"), [
    ("ZOOMCAMP_GCP=cloud\n", "line 1: ZOOMCAMP_GCP='cloud': expected one of emulators, real"),
    ("ZOOMCAMP_GCP=real\nGCP_PROJECT=my-project-123\n", "line 2: unknown setting 'GCP_PROJECT'"),
    ("GCP_BUCKET_NAME=My_Bucket\n", "line 1: Invalid bucket name 'My_Bucket'"),
    ("GCP_PROJECT_ID=1project\n", "line 1: Invalid project ID '1project'"),
    ("just words\n", "line 1: expected KEY=value"),
])
def test_a_bad_settings_file_is_refused_naming_the_line(text, message):
    with pytest.raises(gcp.SettingsError, match="zoomcamp.env " + message.replace("(", r"\(").replace(")", r"\)")):
        gcp.parse_settings(text)


def test_the_switch_is_remembered_and_keeps_the_other_lines(tmp_path):
    path = tmp_path / "zoomcamp.env"
    assert gcp.load("real", path).mode == "real"  # created from the template
    assert "# GCP_PROJECT_ID=my-project\n" in path.read_text()
    assert gcp.load(None, path).mode == "real"  # remembered
    path.write_text(path.read_text().replace("# GCP_PROJECT_ID=my-project\n", f"GCP_PROJECT_ID={PROJECT}\n"))
    assert gcp.load("emulators", path).mode == "emulators"
    text = path.read_text()
    assert text.count("ZOOMCAMP_GCP=") == 1 and f"GCP_PROJECT_ID={PROJECT}" in text
    assert gcp.load("real", path).values == {"GCP_PROJECT_ID": PROJECT}


def test_a_broken_file_is_not_rewritten_by_the_switch(tmp_path):
    path = tmp_path / "zoomcamp.env"
    path.write_text("ZOOMCAMP_GCP=emulators\nGCP_BUCKET=x\n")
    with pytest.raises(gcp.SettingsError, match="unknown setting 'GCP_BUCKET'"):
        gcp.load("real", path)
    assert path.read_text() == "ZOOMCAMP_GCP=emulators\nGCP_BUCKET=x\n"


def test_real_mode_values_default_from_the_credentials_project():
    settings = gcp.GcpSettings("real", {})
    assert gcp.resolve_values(settings, PROJECT) == {
        "GCP_PROJECT_ID": PROJECT, "GCP_LOCATION": "europe-west2", "GCP_BUCKET_NAME": f"{PROJECT}-zoomcamp",
        "GCP_DATASET": "zoomcamp"}
    chosen = gcp.GcpSettings("real", {"GCP_PROJECT_ID": "other-project", "GCP_BUCKET_NAME": "b-1"})
    assert gcp.resolve_values(chosen, PROJECT)["GCP_PROJECT_ID"] == "other-project"
    assert gcp.resolve_values(chosen, PROJECT)["GCP_BUCKET_NAME"] == "b-1"
    unknown = gcp.resolve_values(settings, "")
    assert unknown["GCP_PROJECT_ID"] == "" and unknown["GCP_BUCKET_NAME"] == ""


# -- the environment Airflow gets -----------------------------------------------------------------
PORTS = {key: port for key, _, port in devstack_ports}
METADATA = "postgresql+psycopg://u:p@127.0.0.1:5432/airflow"


def test_emulator_mode_environment_is_the_emulators_and_no_variable(tmp_path):
    env = airflow_environment(tmp_path, PORTS, METADATA, "http://127.0.0.1:9023", "http://127.0.0.1:9050",
                              "127.0.0.1:8681")
    assert env["ZOOMCAMP_GCP"] == "emulators"
    assert json.loads(env["AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"])["extra"]["is_anonymous"] is True
    assert {env["STORAGE_EMULATOR_HOST"], env["BIGQUERY_EMULATOR_HOST"], env["PUBSUB_EMULATOR_HOST"]} == {
        "http://127.0.0.1:9023", "http://127.0.0.1:9050", "127.0.0.1:8681"}
    assert not [name for name in env if name.startswith("AIRFLOW_VAR_")]


def test_real_mode_environment_has_no_emulator_and_no_google_connection(tmp_path):
    env = airflow_environment(tmp_path, PORTS, METADATA, gcp_mode="real")
    values = gcp.resolve_values(gcp.GcpSettings("real", {"GCP_PROJECT_ID": PROJECT}))
    env.update(gcp.real_environment(values))
    assert env["ZOOMCAMP_GCP"] == "real"
    assert not [name for name in env if "EMULATOR" in name or name.startswith("AIRFLOW_CONN_GOOGLE")
                or name.startswith("GCSFS_")]
    assert env["AIRFLOW_VAR_GCP_PROJECT_ID"] == PROJECT and env["AIRFLOW_VAR_GCP_BUCKET_NAME"] == f"{PROJECT}-zoomcamp"


def test_real_mode_removes_inherited_emulator_hosts_and_the_anonymous_connection_only():
    anonymous = json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True}})
    environ = {"STORAGE_EMULATOR_HOST": "http://x", "PUBSUB_EMULATOR_HOST": "h:1", "FIRESTORE_EMULATOR_HOST": "h:2",
               "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false", "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": anonymous,
               "HOME": "/home/me"}
    assert sorted(gcp.clean_inherited(environ)) == [
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", "FIRESTORE_EMULATOR_HOST", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT",
        "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"]
    assert environ == {"HOME": "/home/me"}
    own = json.dumps({"conn_type": "google_cloud_platform", "extra": {"key_path": "/keys/sa.json"}})
    environ = {"AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": own, "AIRFLOW_VAR_GCP_PROJECT_ID": PROJECT}
    assert gcp.clean_inherited(environ) == [] and environ == {"AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": own,
                                                              "AIRFLOW_VAR_GCP_PROJECT_ID": PROJECT}


def test_emulator_mode_removes_inherited_real_mode_values_only():
    environ = {"AIRFLOW_VAR_GCP_PROJECT_ID": PROJECT, "AIRFLOW_VAR_GCP_BUCKET_NAME": "b-1",
               "AIRFLOW_VAR_TAXI_DATA_BASE_URL": "http://mirror", "STORAGE_EMULATOR_HOST": "http://x"}
    assert sorted(gcp.clean_inherited(environ, "emulators")) == ["AIRFLOW_VAR_GCP_BUCKET_NAME",
                                                                  "AIRFLOW_VAR_GCP_PROJECT_ID"]
    assert environ == {"AIRFLOW_VAR_TAXI_DATA_BASE_URL": "http://mirror", "STORAGE_EMULATOR_HOST": "http://x"}


def test_parse_time_values_are_the_environment_form_of_the_variables(monkeypatch):
    from include.zoomcamp.walkthrough import event_ingest

    monkeypatch.delenv("AIRFLOW_VAR_GCP_BUCKET_NAME", raising=False)
    assert event_ingest.landing_uri() == f"gs://{config.GCP_DEFAULTS['GCP_BUCKET_NAME']}/landing/"
    monkeypatch.setenv("AIRFLOW_VAR_GCP_BUCKET_NAME", "my-bucket")
    monkeypatch.setenv("AIRFLOW_VAR_GCP_PROJECT_ID", PROJECT)
    assert event_ingest.landing_uri() == "gs://my-bucket/landing/" and event_ingest.watched_project() == PROJECT


# -- credentials ----------------------------------------------------------------------------------

@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


def _discover(extra, environ, home):
    return credentials.discover(extra, environ, home=home, dmi_product_name=home / "no-dmi")


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_the_connection_key_comes_first(tmp_path, home):
    key = service_account_key(EMAIL, PROJECT, "https://oauth2.googleapis.com/token")
    other = _write(tmp_path / "gac.json", service_account_key("other@p-1.iam.gserviceaccount.com", "p-1", "x"))
    environ = {"GOOGLE_APPLICATION_CREDENTIALS": str(other)}
    found = _discover({"keyfile_dict": json.dumps(key)}, environ, home)
    assert found.usable and found.identity == f"service account {EMAIL}" and found.project == PROJECT
    assert found.source == "connection 'google_cloud_default', key JSON"
    found = _discover({"extra__google_cloud_platform__key_path": str(other)}, {}, home)  # the older UI's field
    assert found.usable and "other@p-1" in found.identity and str(other) in found.source
    assert key["private_key"] not in found.describe()


def test_a_keyless_connection_falls_back_to_gac_then_adc(tmp_path, home):
    gac = _write(tmp_path / "gac.json", service_account_key(EMAIL, PROJECT, "x"))
    found = _discover({}, {"GOOGLE_APPLICATION_CREDENTIALS": str(gac)}, home)
    assert found.usable and found.source == f"GOOGLE_APPLICATION_CREDENTIALS {gac}" and EMAIL in found.identity
    _write(home / ".config" / "gcloud" / "application_default_credentials.json",
           {"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r",
            "quota_project_id": PROJECT})
    found = _discover({"project": PROJECT}, {"HOME": str(home)}, home)
    assert found.usable and found.source.startswith("Application Default Credentials")
    assert found.identity == "ADC user credentials (gcloud auth application-default login)"
    assert found.project == PROJECT
    gone = {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "gone.json")}
    assert _discover({}, gone, home).problem == "no such file"


@pytest.mark.parametrize(("extra", "problem"), [
    (None, "the connection is not defined"),
    ({"is_anonymous": True}, "anonymous access is for the emulators"),
    ({"keyfile_dict": "{not json"}, "not valid JSON"),
    ({"keyfile_dict": {"type": "service_account", "client_email": EMAIL}}, "the key lacks private_key, token_uri"),
    ({"key_path": "/nonexistent/key.json"}, "no such file"),
    ({}, "has no key, GOOGLE_APPLICATION_CREDENTIALS is not set and there is no Application Default Credentials"),
])
def test_unusable_credentials_say_why(extra, problem, home):
    found = _discover(extra, {"HOME": str(home)}, home)
    assert not found.usable and problem in found.problem


def test_the_message_names_connection_project_and_the_three_ways(home):
    found = _discover({}, {"HOME": str(home)}, home)
    message = credentials.unusable_message(found, PROJECT)
    assert f"for project {PROJECT} through connection 'google_cloud_default'" in message
    for way in ("(1) connection 'google_cloud_default'", "Keyfile JSON", "(2) GOOGLE_APPLICATION_CREDENTIALS=",
                "(3) Application Default Credentials: `gcloud auth application-default login`"):
        assert way in message
    assert "not set: GCP_PROJECT_ID in zoomcamp.env" in credentials.unusable_message(found, "")


def test_a_google_cloud_machine_is_told_without_the_network(tmp_path, home):
    dmi = tmp_path / "product_name"
    dmi.write_text("Google Compute Engine\n")
    found = credentials.discover({}, {"HOME": str(home)}, home=home, dmi_product_name=dmi)
    assert found.usable and "metadata server" in found.source


def test_make_run_report_shows_identity_never_the_key_and_warns_without_credentials():
    settings = gcp.GcpSettings("real", {"GCP_PROJECT_ID": PROJECT})
    values = gcp.resolve_values(settings)
    ok = {"source": "GOOGLE_APPLICATION_CREDENTIALS /k.json", "identity": f"service account {EMAIL}", "usable": True}
    lines = gcp.real_mode_report(settings, values, ok, ["STORAGE_EMULATOR_HOST"])
    assert lines[0].startswith("GCP: real") and f"GCP_PROJECT_ID={PROJECT}" in lines[0]
    assert "GCP_BUCKET_NAME=my-project-123-zoomcamp (default)" in lines[0]
    assert lines[1] == "GCP: ignored STORAGE_EMULATOR_HOST from the environment of `make run` (the other mode's)"
    assert lines[2] == f"GCP credentials: GOOGLE_APPLICATION_CREDENTIALS /k.json: service account {EMAIL}"
    none = {"source": "none", "usable": False, "problem": "connection 'google_cloud_default' has no key, ..."}
    [*_, warning] = gcp.real_mode_report(settings, values, {**none, "created": True}, [])
    assert warning.startswith(f"WARNING: No usable GCP credentials for project {PROJECT}")


# -- errors no retry can fix ----------------------------------------------------------------------

def _api_error(status: int, message: str, reasons=()):
    from google.api_core import exceptions

    return exceptions.from_http_status(status, message, errors=[{"reason": r, "message": message} for r in reasons])


@pytest.mark.parametrize(("status", "message", "reasons", "expected"), [
    (403, "POST https://storage.googleapis.com/storage/v1/b?project=my-project-123: zoomcamp@x.iam.gserviceaccount.com "
          "does not have storage.buckets.create access to the Google Cloud project. Permission "
          "'storage.buckets.create' denied on resource (or it may not exist).", ["forbidden"],
     ["403", "project 'my-project-123'", "permission storage.buckets.create is missing",
      "roles/storage.admin on the project"]),
    (403, "POST https://storage.googleapis.com/upload/storage/v1/b/my-bucket/o?uploadType=multipart: zoomcamp@x "
          "does not have storage.objects.create access to the Google Cloud Storage object.", ["forbidden"],
     ["bucket 'my-bucket'", "storage.objects.create", "roles/storage.objectAdmin on the bucket",
      "bucket names are global"]),
    (403, "POST https://bigquery.googleapis.com/bigquery/v2/projects/my-project-123/jobs: Access Denied: Project "
          "my-project-123: User does not have bigquery.jobs.create permission in project my-project-123.",
     ["accessDenied"], ["project 'my-project-123'", "bigquery.jobs.create", "roles/bigquery.jobUser on the project"]),
    (403, "Access Denied: Dataset my-project-123:zoomcamp: Permission bigquery.tables.create denied on dataset "
          "my-project-123:zoomcamp (or it may not exist).", ["accessDenied"],
     ["dataset 'my-project-123:zoomcamp'", "roles/bigquery.dataEditor on the dataset"]),
    (404, "GET https://storage.googleapis.com/storage/v1/b/my-bucket?projection=noAcl: The specified bucket does "
          "not exist.", ["notFound"], ["Bucket 'my-bucket' does not exist", "07_gcp_setup"]),
    (404, "Not found: Dataset my-project-123:zoomcamp was not found in location EU", ["notFound"],
     ["Dataset 'my-project-123:zoomcamp' does not exist"]),
    (403, "BigQuery API has not been used in project 123456 before or it is disabled. Enable it by visiting ...",
     ["SERVICE_DISABLED"], ["gcloud services enable bigquery.googleapis.com"]),
])
def test_errors_no_retry_can_fix_name_the_resource_and_the_role(status, message, reasons, expected):
    explanation = errors.explain(_api_error(status, message, reasons))
    assert explanation is not None and not explanation.retryable
    for text in expected:
        assert text in explanation.message


def test_pubsub_permission_denied_names_the_role():
    from google.api_core import exceptions

    exc = exceptions.PermissionDenied("User not authorized to perform this action. "
                                      "(projects/my-project-123/subscriptions/file-upload-sub)")
    explanation = errors.explain(exc)
    assert "subscription 'projects/my-project-123/subscriptions/file-upload-sub'" in explanation.message
    assert "roles/pubsub" in explanation.message


def test_rate_limits_network_and_server_errors_are_left_to_the_retries():
    from airflow.sdk import RetryAction
    from google.api_core import exceptions

    policy = errors.GcpRetryPolicy()
    limited = _api_error(403, "Exceeded rate limits: too many table update operations", ["rateLimitExceeded"])
    for exc in (limited, exceptions.ServiceUnavailable("backend"), ConnectionError("reset"), ValueError("x")):
        assert policy.evaluate(exc, 1, 4).action == RetryAction.DEFAULT, exc
    decision = policy.evaluate(_api_error(404, "The specified bucket does not exist. /b/nope-1"), 1, 4)
    assert decision.action == RetryAction.FAIL and "Bucket 'nope-1' does not exist" in decision.reason


def test_refused_credentials_fail_at_once_with_the_three_ways():
    from airflow.sdk import RetryAction
    from google.auth.exceptions import DefaultCredentialsError, RefreshError

    for exc in (RefreshError("invalid_grant: Invalid JWT Signature."), DefaultCredentialsError("not found")):
        decision = errors.GcpRetryPolicy().evaluate(exc, 1, 4)
        assert decision.action == RetryAction.FAIL
        assert "connection 'google_cloud_default'" in decision.reason and "(3) Application Default" in decision.reason


def test_a_dag_policy_runs_after_the_gcp_one():
    from airflow.sdk import RetryAction
    from google.api_core import exceptions

    from include.zoomcamp import errors as domain_errors
    from include.zoomcamp.walkthrough.yellow_cab.quality import BIGQUERY_REFUSED

    policy = errors.GcpRetryPolicy(then=domain_errors.retry_policy(BIGQUERY_REFUSED))
    assert policy.evaluate(exceptions.BadRequest("Syntax error"), 1, 4).action == RetryAction.FAIL
    assert policy.evaluate(exceptions.ServiceUnavailable("x"), 1, 4).action == RetryAction.DEFAULT
    assert policy.evaluate(domain_errors.PermanentError("bad input"), 1, 4).action == RetryAction.FAIL
