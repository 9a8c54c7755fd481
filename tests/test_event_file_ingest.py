"""Walkthrough 3_5 through a running Airflow: uploads to the GCS emulator become runs of
`event-file-ingest` without anyone triggering them (bucket notification → Pub/Sub emulator →
PubsubPullTrigger in the triggerer's AssetWatcher → asset event → run), rows land in BigQuery.

The scheduler and triggerer are real (`airflow_stack`); the setup DAG is triggered as a user
would. Every wait is bounded.
"""
from __future__ import annotations

import json
import urllib.parse
from datetime import datetime

import pytest

from include.zoomcamp import config
from include.zoomcamp.walkthrough import samples
from tests.fixtures.yellow_cab import BUCKET, DATASET, PROJECT, bigquery_client, rows_of, upload, yellow_parquet

DAG_ID = "event-file-ingest"
SETUP = "event-file-ingest-setup"
ROWS = 300
EVENT_TIMEOUT = 120  # seconds from an upload to its run having finished


def _runs(stack, dag_id: str = DAG_ID) -> list[dict]:
    return stack.runs(dag_id)


def _wait_runs(stack, known: set[str], count: int = 1, run_type: str = "asset_triggered",
               timeout: float = EVENT_TIMEOUT, dag_id: str = DAG_ID, until=None) -> list[dict]:
    """Until at least `count` runs not in `known` exist, of `run_type`, every run of the DAG has finished
    and `until()` (if given) is true; returns the new runs. A task waiting for a retry fails the wait."""
    def finished():
        runs = _runs(stack, dag_id)
        for run in runs:
            if run["state"] not in ("success", "failed"):
                stack.fail_on_retry(dag_id, run["dag_run_id"])
        new = [r for r in runs if r["dag_run_id"] not in known and r["run_type"] == run_type]
        done = len(new) >= count and all(r["state"] in ("success", "failed") for r in runs)
        return new if done and (until is None or until()) else None
    return stack.wait_until(finished, timeout, f"{count} new {run_type} run(s) of {dag_id} finished", interval=1)


def _known(stack) -> set[str]:
    return {r["dag_run_id"] for r in _runs(stack)}


def _task_instances(stack, run: dict) -> list[dict]:
    return stack.all_task_instances(DAG_ID, run["dag_run_id"])


def _log_text(stack, run: dict, task_id: str, map_index: int = -1) -> str:
    return stack.task_log(DAG_ID, run["dag_run_id"], task_id, map_index=map_index)


def _xcom(stack, run: dict, task_id: str):
    return stack.xcom(DAG_ID, run["dag_run_id"], task_id)


def _ingest_log(bq) -> list[tuple]:
    return [tuple(r) for r in bq.query(
        f"SELECT object_name, generation, rows_loaded FROM `{PROJECT}.{DATASET}.ingest_log` ORDER BY 1, 2").result()]


def _total_rows(bq) -> int:
    return list(bq.query(f"SELECT count(*) FROM `{PROJECT}.{DATASET}.raw_data`").result())[0][0]


@pytest.fixture(scope="module")
def bq(services):
    return bigquery_client()


@pytest.fixture(scope="module")
def stack(airflow_stack, bq):
    """Airflow running with the setup DAG's resources created (through the setup DAG, run twice: idempotent)."""
    airflow_stack.wait_for_dag(SETUP)
    airflow_stack.wait_for_dag(DAG_ID)
    for attempt in range(2):
        known = {r["dag_run_id"] for r in _runs(airflow_stack, SETUP)}
        airflow_stack.cli("dags", "trigger", SETUP)
        [run] = _wait_runs(airflow_stack, known, run_type="manual", dag_id=SETUP, timeout=180)
        assert run["state"] == "success", f"setup run {attempt + 1} failed; see {airflow_stack.log_path}"
    notifications = list(storage_bucket().list_notifications())
    assert [(n.topic_name, n.blob_name_prefix, n.payload_format) for n in notifications] == [
        (config.EVENT_TOPIC, "landing/", "JSON_API_V1")]
    assert {t.table_id for t in bq.list_tables(f"{PROJECT}.{DATASET}")} >= {"raw_data", "ingest_log"}
    return airflow_stack


def storage_bucket():
    from tests.fixtures.yellow_cab import storage_client

    return storage_client().bucket(BUCKET)


def test_an_upload_under_landing_runs_the_dag_by_itself_and_loads_its_rows(stack, bq):
    known = _known(stack)
    generation = upload("landing/yellow_first.parquet", yellow_parquet(ROWS, seed=1))
    runs = _wait_runs(stack, known, until=lambda: rows_of(bq, "landing/yellow_first.parquet") > 0)
    assert {r["state"] for r in runs} == {"success"}
    assert not [r for r in _runs(stack) if r["run_type"] == "manual"]  # nobody triggered it
    assert rows_of(bq, "landing/yellow_first.parquet", generation) == ROWS
    assert ("landing/yellow_first.parquet", generation, ROWS) in _ingest_log(bq)
    # the asset event carries the trigger's Pub/Sub batch
    events = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/"
                              f"{urllib.parse.quote(runs[0]['dag_run_id'], safe='')}/upstreamAssetEvents")
    [event] = events["asset_events"][:1]
    assert event["uri"] == f"gs://{BUCKET}/landing" and event["extra"]["from_trigger"] is True
    message = event["extra"]["payload"]["message"][0]["message"]
    assert message["attributes"]["objectId"] == "landing/yellow_first.parquet"


def test_three_quick_uploads_are_each_loaded_exactly_once(stack, bq):
    known = _known(stack)
    names = [f"landing/yellow_burst_{i}.parquet" for i in range(3)]
    generations = [upload(name, yellow_parquet(ROWS + i, seed=10 + i)) for i, name in enumerate(names)]
    _wait_runs(stack, known, until=lambda: all(rows_of(bq, n) for n in names))
    # A later upload, loaded in its turn: a late duplicate of the burst's notifications would have
    # been delivered (in publish order) and run before it.
    control = upload("landing/yellow_burst_control.parquet", yellow_parquet(ROWS, seed=19))
    _wait_runs(stack, known, until=lambda: rows_of(bq, "landing/yellow_burst_control.parquet", control) == ROWS)
    assert [rows_of(bq, n, g) for n, g in zip(names, generations)] == [ROWS, ROWS + 1, ROWS + 2]
    assert [rows_of(bq, n) for n in names] == [ROWS, ROWS + 1, ROWS + 2]
    logged = [row for row in _ingest_log(bq) if row[0] in names]
    assert logged == [(n, g, ROWS + i) for i, (n, g) in enumerate(zip(names, generations))]
    assert {r["state"] for r in _runs(stack) if r["dag_run_id"] not in known} == {"success"}


def test_a_duplicated_notification_loads_nothing_twice(stack, bq):
    from google.cloud import pubsub_v1

    name = "landing/yellow_dup.parquet"
    known = _known(stack)
    generation = upload(name, yellow_parquet(ROWS, seed=20))
    _wait_runs(stack, known, until=lambda: rows_of(bq, name) > 0)
    total = _total_rows(bq)

    # GCS (at least once) sends the same notification again: same attributes, same object resource.
    publisher = pubsub_v1.PublisherClient()
    attributes = {"notificationConfig": f"projects/_/buckets/{BUCKET}/notificationConfigs/1",
                  "eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "bucketId": BUCKET,
                  "objectId": name, "objectGeneration": str(generation), "eventTime": "2026-01-01T00:00:00.000000Z"}
    data = json.dumps({"kind": "storage#object", "bucket": BUCKET, "name": name, "generation": str(generation)})
    topic = publisher.topic_path(PROJECT, config.EVENT_TOPIC)
    known = _known(stack)
    publisher.publish(topic, data.encode(), **attributes).result(timeout=10)
    runs = _wait_runs(stack, known)
    assert {r["state"] for r in runs} == {"success"}
    assert rows_of(bq, name, generation) == ROWS and _total_rows(bq) == total
    assert [row for row in _ingest_log(bq) if row[0] == name] == [(name, generation, ROWS)]
    loads = [ti for run in runs for ti in _task_instances(stack, run) if ti["task_id"] == "load_object"]
    assert loads and {ti["state"] for ti in loads} == {"success"}
    assert "already in YellowCab.raw_data" in _log_text(stack, runs[0], "load_object", 0)


def test_a_non_data_object_is_skipped_not_failed(stack, bq):
    known = _known(stack)
    total = _total_rows(bq)
    upload("landing/readme.txt", b"not trips\n")
    [run] = _wait_runs(stack, known)
    assert run["state"] == "success"
    assert {ti["state"] for ti in _task_instances(stack, run)} <= {"success", "skipped"}
    assert "landing/readme.txt" not in json.dumps(_xcom(stack, run, "collect_objects"))
    assert "not a data file" in _log_text(stack, run, "collect_objects")
    assert _total_rows(bq) == total


def test_a_broken_file_fails_its_run_naming_the_object_and_leaves_the_table(stack, bq):
    name = "landing/yellow_broken.parquet"
    known = _known(stack)
    total = _total_rows(bq)
    generation = upload(name, yellow_parquet(ROWS, seed=30, truncate=True))
    [run] = _wait_runs(stack, known)
    assert run["state"] == "failed"
    [load] = [ti for ti in _task_instances(stack, run) if ti["task_id"] == "load_object"]
    assert load["state"] == "failed" and load["try_number"] == 1  # no retry of a file that cannot load
    assert f"gs://{BUCKET}/{name}#{generation}" in _log_text(stack, run, "load_object", 0)
    assert _total_rows(bq) == total
    assert not [row for row in _ingest_log(bq) if row[0] == name]
    staging = [t.table_id for t in bq.list_tables(f"{PROJECT}.{DATASET}") if t.table_id.startswith("_stage_")]
    assert staging == []


def test_a_csv_upload_is_loaded_like_a_parquet_one(stack, bq):
    name = "landing/yellow_tripdata_2024-05.csv"
    known = _known(stack)
    generation = upload(name, samples.yellow_csv(ROWS, seed=5, start=datetime(2024, 5, 1)))
    [run] = _wait_runs(stack, known, until=lambda: rows_of(bq, name) > 0)
    assert run["state"] == "success"
    assert rows_of(bq, name, generation) == ROWS
    assert (name, generation, ROWS) in _ingest_log(bq)
    fares = list(bq.query(f"SELECT count(*), countif(fare_amount IS NULL) FROM `{PROJECT}.{DATASET}.raw_data` "
                          f"WHERE source_uri = 'gs://{BUCKET}/{name}'").result())[0]
    assert tuple(fares) == (ROWS, 0)  # typed from the CSV's text, not dropped


def test_a_manual_run_without_an_event_succeeds_and_one_naming_an_object_loads_it_once(stack, bq):
    known = _known(stack)
    total = _total_rows(bq)
    stack.cli("dags", "trigger", DAG_ID)
    [run] = _wait_runs(stack, known, run_type="manual")
    assert run["state"] == "success"
    assert "manual-run" in _log_text(stack, run, "collect_objects")
    assert _total_rows(bq) == total
    # With param object_name it loads that object (outside landing/: no notification), once.
    name = "manual/yellow_manual.parquet"
    generation = upload(name, yellow_parquet(ROWS, seed=40))
    for _ in range(2):
        known = _known(stack)
        stack.cli("dags", "trigger", DAG_ID, "--conf", json.dumps({"object_name": name}))
        [run] = _wait_runs(stack, known, run_type="manual")
        assert run["state"] == "success"
        assert rows_of(bq, name, generation) == ROWS and _total_rows(bq) == total + ROWS
