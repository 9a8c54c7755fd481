"""Walkthrough 3_5 through a running Airflow: uploads to the GCS emulator become runs of
`event-file-ingest` without anyone triggering them (bucket notification → Pub/Sub emulator →
PubsubPullTrigger in the triggerer's AssetWatcher → asset event → run), rows land in BigQuery;
an upload whose notification never became a run is loaded by `event-file-ingest-reconcile`, once;
events naming another bucket are refused; a devstack restart keeps uploads flowing.

The scheduler and triggerer are real (`airflow_stack`); the setup DAG is triggered as a user
would. Every wait is bounded.
"""
from __future__ import annotations

import json
import urllib.parse
import uuid
from contextlib import contextmanager
from datetime import datetime

import pytest

from include.zoomcamp import config
from include.zoomcamp.walkthrough import event_ingest, samples
from tests.fixtures.yellow_cab import (
    BUCKET,
    DATASET,
    PROJECT,
    bigquery_client,
    rows_of,
    storage_client,
    upload,
    yellow_parquet,
)

DAG_ID = "event-file-ingest"
SETUP = "event-file-ingest-setup"
RECONCILE = "event-file-ingest-reconcile"
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
    yield airflow_stack
    # other modules clear raw_data and ingest_log: no upload of this module may look unloaded to them
    for prefix in ("landing/", "manual/"):
        for blob in storage_client().list_blobs(BUCKET, prefix=prefix):
            blob.delete()


def storage_bucket():
    return storage_client().bucket(BUCKET)


def _publish_finalize(bucket: str, name: str, generation: int) -> None:
    """The message GCS sends for an upload (OBJECT_FINALIZE, JSON_API_V1), published to the event topic."""
    from google.cloud import pubsub_v1

    attributes = {"notificationConfig": f"projects/_/buckets/{bucket}/notificationConfigs/1",
                  "eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "bucketId": bucket,
                  "objectId": name, "objectGeneration": str(generation), "eventTime": "2026-01-01T00:00:00.000000Z"}
    data = json.dumps({"kind": "storage#object", "bucket": bucket, "name": name, "generation": str(generation)})
    publisher = pubsub_v1.PublisherClient()
    publisher.publish(publisher.topic_path(PROJECT, config.EVENT_TOPIC), data.encode(), **attributes).result(timeout=10)


def test_an_upload_under_landing_runs_the_dag_by_itself_and_loads_its_rows(stack, bq):
    known = _known(stack)
    generation = upload("landing/yellow_first.parquet", yellow_parquet(ROWS, seed=1))
    runs = _wait_runs(stack, known, until=lambda: rows_of(bq, "landing/yellow_first.parquet") > 0)
    assert {r["state"] for r in runs} == {"success"}
    triggered_by_hand = [r for r in _runs(stack) if r["run_type"] == "manual" and r["dag_run_id"] not in known]
    assert not triggered_by_hand
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
    name = "landing/yellow_dup.parquet"
    known = _known(stack)
    generation = upload(name, yellow_parquet(ROWS, seed=20))
    _wait_runs(stack, known, until=lambda: rows_of(bq, name) > 0)
    total = _total_rows(bq)

    # GCS (at least once) sends the same notification again: same attributes, same object resource.
    known = _known(stack)
    _publish_finalize(BUCKET, name, generation)
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
    try:
        [run] = _wait_runs(stack, known)
        assert run["state"] == "failed"
        [load] = [ti for ti in _task_instances(stack, run) if ti["task_id"] == "load_object"]
        assert load["state"] == "failed" and load["try_number"] == 1  # no retry of a file that cannot load
        assert f"gs://{BUCKET}/{name}#{generation}" in _log_text(stack, run, "load_object", 0)
        assert _total_rows(bq) == total
        assert not [row for row in _ingest_log(bq) if row[0] == name]
        staging = [t.table_id for t in bq.list_tables(f"{PROJECT}.{DATASET}") if t.table_id.startswith("_stage_")]
        assert staging == []
    finally:
        storage_bucket().blob(name).delete()  # else each reconciliation would fail on it


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


# -- losses the event chain cannot see, and the reconciliation -------------------------------------------------
def _landing_asset(stack) -> dict:
    query = urllib.parse.urlencode({"name_pattern": event_ingest.ASSET_NAME, "only_active": "false"})
    [asset] = [a for a in stack.api("GET", f"/api/v2/assets?{query}")["assets"] if a["name"] == event_ingest.ASSET_NAME]
    return asset


def _reparse(stack, dag_id: str) -> None:
    """Ask the dag-processor to parse the DAG's file next (it updates the asset's watchers)."""
    stack.api("PUT", f"/api/v2/parseDagFile/{stack.api('GET', f'/api/v2/dags/{dag_id}')['file_token']}")


def _triggerer_heartbeats(stack, count: int) -> None:
    """Until the triggerer has written `count` more heartbeats: each comes after a new pass of its loop."""
    def latest():
        return stack.api("GET", "/api/v2/monitor/health")["triggerer"]["latest_triggerer_heartbeat"]
    seen = latest()
    for _ in range(count):
        seen = stack.wait_until(lambda: (beat := latest()) and beat > seen and beat, 60, "a triggerer heartbeat")


@contextmanager
def _watcher_stopped(stack):
    """`event-file-ingest` paused, which removes its asset's watcher; the triggerer then cancels the
    PubsubPullTrigger (it drops the trigger's row on one pass of its loop, cancels it on the next: three
    heartbeats cover both). Active and watched again afterwards."""
    stack.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": True})
    try:
        _reparse(stack, DAG_ID)
        stack.wait_until(lambda: not _landing_asset(stack)["watchers"], 180, "the landing asset without watcher")
        _triggerer_heartbeats(stack, 3)
        yield
    finally:
        stack.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        _reparse(stack, DAG_ID)
        stack.wait_until(lambda: _landing_asset(stack)["watchers"], 180, "the landing asset watched again")


def _ack_notification(stack, object_name: str) -> None:
    """Pull file-upload-sub until the notification of `object_name` comes, and ack it, as the trigger does
    (other messages are handed back at once)."""
    from google.cloud import pubsub_v1

    with pubsub_v1.SubscriberClient() as subscriber:
        subscription = subscriber.subscription_path(PROJECT, config.EVENT_SUBSCRIPTION)

        def acked() -> bool:
            received = subscriber.pull(subscription=subscription, max_messages=10, return_immediately=True,
                                       timeout=30).received_messages
            mine = [m.ack_id for m in received if m.message.attributes["objectId"] == object_name]
            others = [m.ack_id for m in received if m.ack_id not in mine]
            if others:
                subscriber.modify_ack_deadline(subscription=subscription, ack_ids=others, ack_deadline_seconds=0)
            if mine:
                subscriber.acknowledge(subscription=subscription, ack_ids=mine)
            return bool(mine)
        stack.wait_until(acked, 60, f"the notification of {object_name} pulled")


def _reconcile(stack) -> tuple[str, dict]:
    with stack.unpaused(RECONCILE):  # paused for the session (tests/conftest.py)
        run_id = stack.trigger(RECONCILE)
        return run_id, stack.wait_for_run(RECONCILE, run_id)


def _logged(bq, name: str) -> list[tuple]:
    return [tuple(r) for r in bq.query(
        f"SELECT generation, rows_loaded, event_type FROM `{PROJECT}.{DATASET}.ingest_log` "
        f"WHERE bucket = '{BUCKET}' AND object_name = '{name}'").result()]


@pytest.mark.timeout(900)
def test_an_upload_acked_without_a_run_is_loaded_once_by_the_reconciliation(stack, bq):
    """The trigger acks a pulled batch, then the triggerer stores it as an asset event: a triggerer stopped
    in between leaves the message acked (Pub/Sub never delivers it again) and no event, so no run. Here the
    test is that consumer: with the watcher stopped it pulls and acks the upload's notification itself, the
    same state. The reconciliation loads the file, once; a second reconciliation adds nothing."""
    name = "landing/yellow_acked_without_run.parquet"
    stack.wait_for_dag(RECONCILE)
    known = _known(stack)
    with _watcher_stopped(stack):
        generation = upload(name, yellow_parquet(ROWS, seed=60))
        _ack_notification(stack, name)
    assert [r for r in _runs(stack) if r["dag_run_id"] not in known] == []  # lost to the event chain
    try:
        run_id, run = _reconcile(stack)
        assert run["state"] == "success"
        assert rows_of(bq, name, generation) == ROWS and rows_of(bq, name) == ROWS
        assert _logged(bq, name) == [(generation, ROWS, event_ingest.RECONCILE)]
        total, logged = _total_rows(bq), _ingest_log(bq)

        run_id, run = _reconcile(stack)
        assert run["state"] == "success"
        assert stack.xcom(RECONCILE, run_id, "list_unloaded") == []
        assert _total_rows(bq) == total and _ingest_log(bq) == logged
    finally:
        storage_bucket().blob(name).delete()


def test_an_event_for_another_bucket_is_refused_and_logged(stack, bq):
    """Anything allowed to publish to the topic could name any bucket: the DAG loads only the watched one's."""
    foreign = f"foreign-{uuid.uuid4().hex[:8]}"
    name = "landing/yellow_foreign.parquet"
    bucket = storage_client().create_bucket(foreign)
    try:
        generation = upload(name, yellow_parquet(ROWS, seed=70), bucket=foreign)
        known = _known(stack)
        total = _total_rows(bq)
        _publish_finalize(foreign, name, generation)
        [run] = _wait_runs(stack, known)
        assert run["state"] == "success"
        assert _xcom(stack, run, "collect_objects") == []
        refusal = f"refused: bucket {foreign} is not the watched bucket {BUCKET}"
        assert refusal in _log_text(stack, run, "collect_objects")
        assert rows_of(bq, name, bucket=foreign) == 0 and _total_rows(bq) == total
        assert not list(bq.query(f"SELECT 1 FROM `{PROJECT}.{DATASET}.ingest_log` "
                                 f"WHERE bucket = '{foreign}'").result())
    finally:
        for blob in bucket.list_blobs():
            blob.delete()
        bucket.delete()


def test_a_devstack_restart_recreates_the_event_topic_and_subscription(tmp_path, monkeypatch):
    """The Pub/Sub emulator keeps its topics in memory, the GCS emulator its notification configs on disk:
    after `stop_services`/`start_services` the topic and the subscription exist again and an upload under
    landing/ reaches the subscription."""
    from google.cloud import pubsub_v1

    from devstack.__main__ import PORTS, start_services, stop_services
    from devstack.postgres import free_port

    ports: dict[str, int] = {}
    for key, _, _ in PORTS:
        while (port := free_port(0)) in ports.values():
            pass
        ports[key] = port
    env = start_services(tmp_path, ports=ports)
    try:
        for name in ("STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
            monkeypatch.setenv(name, env[name])
        topic = pubsub_v1.PublisherClient().topic_path(PROJECT, config.EVENT_TOPIC)
        subscription = pubsub_v1.SubscriberClient().subscription_path(PROJECT, config.EVENT_SUBSCRIPTION)
        pubsub_v1.PublisherClient().create_topic(name=topic, timeout=10)
        with pubsub_v1.SubscriberClient() as subscriber:
            subscriber.create_subscription(name=subscription, topic=topic,
                                           ack_deadline_seconds=config.EVENT_ACK_DEADLINE_SECONDS, timeout=10)
        storage_client().create_bucket(BUCKET)
        event_ingest.ensure_bucket_notification(BUCKET, PROJECT)

        stop_services(tmp_path)
        start_services(tmp_path, ports=ports)
        assert pubsub_v1.PublisherClient().get_topic(topic=topic, timeout=10).name == topic
        with pubsub_v1.SubscriberClient() as subscriber:
            found = subscriber.get_subscription(subscription=subscription, timeout=10)
            assert (found.topic, found.ack_deadline_seconds) == (topic, config.EVENT_ACK_DEADLINE_SECONDS)
            name = "landing/after_restart.parquet"
            generation = upload(name, yellow_parquet(10, seed=80))
            received = subscriber.pull(subscription=subscription, max_messages=10, return_immediately=True,
                                       timeout=10).received_messages
        assert [(m.message.attributes["objectId"], m.message.attributes["objectGeneration"]) for m in received] == [
            (name, str(generation))]
    finally:
        stop_services(tmp_path)
