"""`make run GCP=real` and back, through `python -m devstack run` in a subprocess (throw-away data dir and
ports, the scheduler and api-server for real), on one data dir:

1. emulators (no settings file): 07, 08 and event-file-ingest load data into the emulators;
2. `--gcp real` (zoomcamp.env names the project; the shell still exports an emulator host): no emulator
   runs or listens, a task's environment has no emulator variable, `make run` warns that no credentials
   are usable, `gcp-connection-test` fails at once saying how to give them, then a service-account key
   set through the REST API is the one the next task's hook uses (07_gcp_setup fails at once: the loopback
   token endpoint refuses it, as Google refuses a deleted key);
3. `--gcp emulators`: the emulators' files are as step 1 left them, 07/08/event-file-ingest pass again,
   and the connection set in step 2 is still there.
No real GCP is reached: the token endpoint of the generated key is a loopback server.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time

import pytest

from devstack import component
from devstack.postgres import port_is_free
from tests.fixtures.devstack_run import DevstackRun, devstack_env
from tests.fixtures.gcp_keys import RefusingTokenEndpoint, service_account_key
from tests.fixtures.taxi import FileServer, write_taxi_gz
from tests.fixtures.yellow_cab import bigquery_client, rows_of, upload, yellow_parquet

PROJECT = "my-project-123"
EMULATOR_PORTS = ("pubsub_port", "gcs_port", "bq_port", "bq_grpc_port")
FAIL_FAST_SECONDS = 15
TAXI_ROWS = 500
PROBE_DAG = '''
from airflow.sdk import DAG, task

with DAG(dag_id="gcp_mode_probe", schedule=None):
    @task
    def gcp_environment() -> dict:
        import os

        return {k: v for k, v in os.environ.items() if "EMULATOR" in k or k.startswith(
            ("AIRFLOW_CONN_GOOGLE", "AIRFLOW_VAR_GCP", "ZOOMCAMP_GCP", "GCSFS_", "GOOGLE_APPLICATION"))}

    gcp_environment()
'''


def _snapshot(root) -> dict[str, str]:
    """Every file of the emulators' data, by path: its SHA-256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("gcs", "bigquery") for p in sorted((root / sub).rglob("*")) if p.is_file()}


def _run(stack, dag_id: str, conf: dict | None = None, timeout: float = 300) -> tuple[dict, dict]:
    stack.wait_for_dag(dag_id)
    run_id = stack.trigger(dag_id, conf)
    return stack.wait_for_run(dag_id, run_id, timeout=timeout), stack.task_instances(dag_id, run_id)


def _succeeds(stack, dag_id: str, conf: dict | None = None) -> None:
    run, tis = _run(stack, dag_id, conf)
    assert run["state"] == "success", (dag_id, {t: ti["state"] for t, ti in tis.items()}, stack.log_path)


def _fails_fast(stack, dag_id: str, task_id: str) -> str:
    """The run fails at `task_id`'s first try within FAIL_FAST_SECONDS; returns its log."""
    from datetime import datetime

    run, tis = _run(stack, dag_id)
    ti = tis[task_id]
    assert run["state"] == "failed" and ti["state"] == "failed" and ti["try_number"] == 1, (run, ti)
    seconds = (datetime.fromisoformat(ti["end_date"]) - datetime.fromisoformat(ti["start_date"])).total_seconds()
    print(f"{dag_id}.{task_id}: failed after {seconds:.1f} s, first try")
    assert seconds < FAIL_FAST_SECONDS
    return stack.task_log(dag_id, run["dag_run_id"], task_id)


def _use_emulators(monkeypatch, stack) -> None:
    """Point this process's Google clients at the stack's emulators."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", stack.env["STORAGE_EMULATOR_HOST"])
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", stack.env["BIGQUERY_EMULATOR_HOST"])


def _ingest(stack, monkeypatch, name: str, rows: int, seed: int) -> None:
    """Upload `name` under landing/ and wait for the run it triggers to load it."""
    _use_emulators(monkeypatch, stack)
    _succeeds(stack, "event-file-ingest-setup")  # the Pub/Sub emulator keeps its topics in memory only
    stack.wait_for_dag("event-file-ingest")
    generation = upload(name, yellow_parquet(rows, seed=seed))
    bq = bigquery_client()
    deadline = time.monotonic() + 180
    while rows_of(bq, name, generation) != rows:
        assert time.monotonic() < deadline, f"{name} was not loaded; see {stack.log_path}"
        time.sleep(1)
    runs = [r for r in stack.runs("event-file-ingest") if r["run_type"] == "asset_triggered"]
    assert runs and {r["state"] for r in runs} <= {"success", "running", "queued"}


def _green_rows(monkeypatch, stack) -> int:
    _use_emulators(monkeypatch, stack)
    query = "SELECT count(*) FROM `zoomcamp-local.zoomcamp.green_tripdata`"
    return list(bigquery_client().query(query).result())[0][0]


def _stopped_cleanly(stack) -> None:
    """Ctrl-C stopped Airflow before anything had to be killed, the scheduler with one signal that took effect
    (a second one cuts its wait for the LocalExecutor's workers short, and it hangs until killed); one whose
    exit Python dropped in a callback was sent again by devstack.component, and only that one."""
    output = stack.output()
    assert stack.proc.returncode == 0, output[-3000:]
    scheduler = [line for line in output.splitlines() if line.startswith("scheduler ")]
    handled = [line for line in scheduler if "Exiting gracefully upon receiving signal" in line]
    resent = [line for line in scheduler if component.SIGNAL_SENT_AGAIN in line]
    assert len(handled) == 1 + len(resent), handled + resent


@pytest.fixture
def taxi_site(tmp_path):
    write_taxi_gz(tmp_path / "site", "green", 2019, 1, TAXI_ROWS)
    with FileServer(tmp_path / "site") as server:
        yield server.url


@pytest.mark.stack
@pytest.mark.timeout(1200)
def test_switching_to_real_gcp_and_back_keeps_everything(tmp_path, monkeypatch, taxi_site):
    probe = tmp_path / "probe_dags"
    probe.mkdir()
    (probe / "gcp_mode_probe.py").write_text(PROBE_DAG)
    bundles = json.dumps([
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
        {"name": "gcp-probe", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(probe)}}])
    (tmp_path / "home").mkdir()  # a home without gcloud's Application Default Credentials
    env = devstack_env(tmp_path, AIRFLOW_VAR_TAXI_DATA_BASE_URL=taxi_site, HOME=str(tmp_path / "home"),
                       AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=bundles)
    data, settings_file = tmp_path / "data", tmp_path / "zoomcamp.env"
    conf = {"taxi": "green", "year": "2019", "month": "01"}
    try:
        # 1. emulators, the default: data into GCS and BigQuery
        with DevstackRun(env, tmp_path / "emulators-1.log") as stack:
            assert "GCP: emulators (offline)" in stack.output()
            assert stack.env["ZOOMCAMP_GCP"] == "emulators"
            _succeeds(stack, "07_gcp_setup")
            _succeeds(stack, "08_gcp_taxi", conf)
            _ingest(stack, monkeypatch, "landing/before_switch.parquet", 300, seed=1)
            green_rows = _green_rows(monkeypatch, stack)
            assert green_rows == TAXI_ROWS
        _stopped_cleanly(stack)
        before = _snapshot(data)
        assert any(path.startswith("gcs/") for path in before) and any(path.startswith("bigquery/") for path in before)

        # 2. real GCP: no emulator, no usable credentials at first, then a key set through the REST API
        settings_file.write_text(f"GCP_PROJECT_ID={PROJECT}\n")
        # left in the shell by `set -a; . ./devstack.env` of an emulator-mode start
        real_env = {**env, "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
        with RefusingTokenEndpoint() as token_endpoint, \
                DevstackRun(real_env, tmp_path / "real.log", "--gcp", "real") as stack:
            output = stack.output()
            assert f"GCP: real — your project, no emulators (GCP_PROJECT_ID={PROJECT}, " in output
            assert f"GCP_BUCKET_NAME={PROJECT}-zoomcamp (default)" in output
            assert "ignored GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT, STORAGE_EMULATOR_HOST from the environment" in output
            assert "created connection 'google_cloud_default' without a key" in output
            assert f"WARNING: No usable GCP credentials for project {PROJECT} through connection" in output
            assert "ZOOMCAMP_GCP=real" in settings_file.read_text()
            ports = stack.ports()
            assert all(port_is_free(ports[key]) for key in EMULATOR_PORTS), ports
            assert not list(data.glob("*emulator.pid"))
            assert not [k for k in stack.env if "EMULATOR" in k or k.startswith("AIRFLOW_CONN_GOOGLE")]

            _succeeds(stack, "gcp_mode_probe")
            [probe_run] = stack.runs("gcp_mode_probe")
            assert stack.xcom("gcp_mode_probe", probe_run["dag_run_id"], "gcp_environment") == {
                "ZOOMCAMP_GCP": "real", "AIRFLOW_VAR_GCP_PROJECT_ID": PROJECT,
                "AIRFLOW_VAR_GCP_LOCATION": "europe-west2", "AIRFLOW_VAR_GCP_BUCKET_NAME": f"{PROJECT}-zoomcamp",
                "AIRFLOW_VAR_GCP_DATASET": "zoomcamp"}

            shown = stack.api("GET", "/zoomcamp-dashboard/api/summary?days=1")["gcp"]
            assert shown == {"mode": "real", "project": PROJECT}  # the dashboard shows the mode

            log = _fails_fast(stack, "gcp-connection-test", "write_hello")
            assert f"No usable GCP credentials for project {PROJECT} through connection 'google_cloud_default'" in log
            assert "(2) GOOGLE_APPLICATION_CREDENTIALS" in log and "gcloud auth application-default login" in log

            email = f"set-in-the-ui@{PROJECT}.iam.gserviceaccount.com"
            key = service_account_key(email, PROJECT, token_endpoint.url)
            stack.api("PATCH", "/api/v2/connections/google_cloud_default", {
                "connection_id": "google_cloud_default", "conn_type": "google_cloud_platform",
                "extra": json.dumps({"keyfile_dict": json.dumps(key)})})
            log = _fails_fast(stack, "07_gcp_setup", "create_gcs_bucket")
            assert token_endpoint.issuers == [email]
            assert f"Google refused the GCP credentials of connection 'google_cloud_default' (connection " \
                   f"'google_cloud_default', key JSON: service account {email}), project {PROJECT}" in log
        assert _snapshot(data) == before  # real mode touched none of the emulators' data

        # 3. back to the emulators: the data as it was, the DAGs pass again
        with DevstackRun(env, tmp_path / "emulators-2.log", "--gcp", "emulators") as stack:
            assert "GCP: emulators (offline)" in stack.output()
            assert "ZOOMCAMP_GCP=emulators" in settings_file.read_text()
            _use_emulators(monkeypatch, stack)
            assert rows_of(bigquery_client(), "landing/before_switch.parquet") == 300
            assert _green_rows(monkeypatch, stack) == green_rows
            _succeeds(stack, "07_gcp_setup")
            _succeeds(stack, "08_gcp_taxi", conf)
            assert _green_rows(monkeypatch, stack) == green_rows  # the month again: nothing new to merge
            _ingest(stack, monkeypatch, "landing/after_switch.parquet", 200, seed=2)
            kept = stack.api("GET", "/api/v2/connections/google_cloud_default")
            assert "keyfile_dict" in json.loads(kept["extra"])  # kept; the emulators' connection hides it here
    finally:
        shutil.rmtree(data, ignore_errors=True)

