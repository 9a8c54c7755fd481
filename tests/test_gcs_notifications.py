"""GCS bucket notifications on devstack's emulators: an upload to the GCS emulator publishes GCS's own
message to the Pub/Sub emulator, through the official clients (and the Airflow trigger) only."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import uuid

import pytest
from google.api_core import exceptions

from include.zoomcamp import config

PROJECT = config.GCP_DEFAULTS[config.GCP_PROJECT_ID_VAR]
TIMEOUT = 10


@pytest.fixture(scope="module")
def publisher(services):
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient()


@pytest.fixture(scope="module")
def subscriber(services):
    from google.cloud import pubsub_v1

    with pubsub_v1.SubscriberClient() as client:
        yield client


def _storage_client():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=PROJECT, credentials=AnonymousCredentials())


@pytest.fixture
def storage(services):
    return _storage_client()


@pytest.fixture
def bucket(storage):
    return storage.create_bucket(f"notif-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def topic_sub(publisher, subscriber):
    """(topic id, subscription path) of a fresh topic with one subscription."""
    suffix = uuid.uuid4().hex[:8]
    topic = publisher.topic_path(PROJECT, f"uploads-{suffix}")
    publisher.create_topic(name=topic, timeout=TIMEOUT)
    sub = subscriber.subscription_path(PROJECT, f"uploads-sub-{suffix}")
    subscriber.create_subscription(name=sub, topic=topic, timeout=TIMEOUT)
    return topic.rsplit("/", 1)[1], sub


def _notification(bucket, topic_id, **kwargs):
    from google.cloud.storage.notification import JSON_API_V1_PAYLOAD_FORMAT, OBJECT_FINALIZE_EVENT_TYPE

    kwargs.setdefault("event_types", [OBJECT_FINALIZE_EVENT_TYPE])
    kwargs.setdefault("payload_format", JSON_API_V1_PAYLOAD_FORMAT)
    notification = bucket.notification(topic_name=topic_id, topic_project=PROJECT, **kwargs)
    notification.create(timeout=TIMEOUT)
    return notification


def _drain(subscriber, sub) -> list:
    """Every message waiting now (publishing is synchronous with the upload), acked."""
    response = subscriber.pull(subscription=sub, max_messages=100, return_immediately=True, timeout=TIMEOUT)
    received = list(response.received_messages)
    if received:
        subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in received], timeout=TIMEOUT)
    return [m.message for m in received]


def test_upload_under_the_prefix_publishes_one_finalize(bucket, topic_sub, subscriber):
    topic_id, sub = topic_sub
    notification = _notification(bucket, topic_id, blob_name_prefix="landing/", custom_attributes={"flow": "i8"})
    assert notification.notification_id == "1"
    assert notification.topic_name == topic_id and notification.topic_project == PROJECT

    blob = bucket.blob("landing/green_2019-01.csv")
    blob.upload_from_string(b"a,b\n1,2\n", content_type="text/csv")
    bucket.blob("elsewhere/green_2019-01.csv").upload_from_string(b"ignored")
    [message] = _drain(subscriber, sub)
    attributes = dict(message.attributes)
    event_time = attributes.pop("eventTime")
    assert attributes == {
        "notificationConfig": f"projects/_/buckets/{bucket.name}/notificationConfigs/1",
        "eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "bucketId": bucket.name,
        "objectId": "landing/green_2019-01.csv", "objectGeneration": str(blob.generation), "flow": "i8",
    }
    assert event_time.endswith("Z") and "T" in event_time
    payload = json.loads(message.data)
    assert payload["kind"] == "storage#object"
    assert (payload["bucket"], payload["name"], payload["size"]) == (bucket.name, blob.name, "8")
    assert payload["generation"] == str(blob.generation) and payload["contentType"] == "text/csv"

    # Replacing the object names the generation it overwrote; the sole config only wants FINALIZE.
    blob.upload_from_string(b"a,b\n3,4\n")
    [message] = _drain(subscriber, sub)
    assert message.attributes["overwroteGeneration"] == attributes["objectGeneration"]
    assert message.attributes["objectGeneration"] == str(blob.generation) != attributes["objectGeneration"]
    # Every upload path ends in a notification, e.g. a resumable upload and a server-side copy.
    bucket.blob("landing/big.bin", chunk_size=256 * 1024).upload_from_string(b"x" * 300_000)
    bucket.copy_blob(bucket.blob("elsewhere/green_2019-01.csv"), bucket, "landing/copied.csv")
    objects = sorted(m.attributes["objectId"] for m in _drain(subscriber, sub))
    assert objects == ["landing/big.bin", "landing/copied.csv"]


def test_payload_none_and_delete_events(bucket, topic_sub, subscriber):
    from google.cloud.storage.notification import NONE_PAYLOAD_FORMAT, OBJECT_DELETE_EVENT_TYPE

    topic_id, sub = topic_sub
    _notification(bucket, topic_id, event_types=[OBJECT_DELETE_EVENT_TYPE], payload_format=NONE_PAYLOAD_FORMAT)
    blob = bucket.blob("any/file.txt")
    blob.upload_from_string(b"x")
    assert _drain(subscriber, sub) == []
    blob.delete()
    [message] = _drain(subscriber, sub)
    assert message.data == b""
    assert (message.attributes["eventType"], message.attributes["payloadFormat"]) == ("OBJECT_DELETE", "NONE")
    assert message.attributes["objectGeneration"] == str(blob.generation)


def test_list_get_and_delete_configs(bucket, topic_sub):
    topic_id, _ = topic_sub
    first = _notification(bucket, topic_id, blob_name_prefix="a/")
    second = _notification(bucket, topic_id)
    assert [n.notification_id for n in bucket.list_notifications()] == ["1", "2"]
    fetched = bucket.get_notification("1")
    assert (fetched.blob_name_prefix, fetched.event_types, fetched.payload_format) == (
        "a/", ["OBJECT_FINALIZE"], "JSON_API_V1")
    first.delete()
    assert not first.exists() and second.exists()
    assert [n.notification_id for n in bucket.list_notifications()] == ["2"]
    with pytest.raises(exceptions.NotFound):
        first.delete()
    assert _notification(bucket, topic_id).notification_id == "3"  # ids are not reused


def test_config_needs_an_existing_topic_and_bucket(storage, bucket):
    with pytest.raises(exceptions.BadRequest):
        _notification(bucket, "no-such-topic")
    with pytest.raises(exceptions.NotFound):
        list(storage.bucket("no-such-bucket").list_notifications())


def test_configs_survive_a_restart(tmp_path, monkeypatch, topic_sub, subscriber):
    """A second GCS emulator on its own data dir: stopped and started again, it keeps its configs."""
    from devstack.emulators import GcsEmulator
    from devstack.postgres import free_port

    gcs = GcsEmulator("gcs-restart", tmp_path / "gcs", free_port(0), os.environ["PUBSUB_EMULATOR_HOST"])
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    topic_id, sub = topic_sub
    gcs.start()
    try:
        bucket = _storage_client().create_bucket("restart-bucket")
        _notification(bucket, topic_id, blob_name_prefix="landing/")
        gcs.stop()
        assert (tmp_path / "gcs" / "notification_configs.json").exists()
        gcs.start()
        bucket = _storage_client().bucket("restart-bucket")
        assert [(n.notification_id, n.topic_name) for n in bucket.list_notifications()] == [("1", topic_id)]
        bucket.blob("landing/after-restart.csv").upload_from_string(b"x")
        [message] = _drain(subscriber, sub)
        assert message.attributes["objectId"] == "landing/after-restart.csv"
        assert (tmp_path / "gcs" / ".cloudstorage" / "restart-bucket" / "landing" / "after-restart.csv").exists()
    finally:
        gcs.stop()


def test_airflow_pubsub_pull_trigger_receives_the_notification(bucket, topic_sub, subscriber):
    """The google provider's trigger (what an AssetWatcher runs) reaches the emulator through
    PUBSUB_EMULATOR_HOST and the anonymous `google_cloud_default` connection, and acks."""
    from airflow.providers.google.cloud.triggers.pubsub import PubsubPullTrigger

    topic_id, sub = topic_sub
    _notification(bucket, topic_id, blob_name_prefix="landing/")
    trigger = PubsubPullTrigger(project_id=PROJECT, subscription=sub.rsplit("/", 1)[1], max_messages=10,
                                ack_messages=True, gcp_conn_id=config.GCP_CONN_ID, poke_interval=1,
                                return_immediately=False)

    async def first_event():
        async def upload_soon():
            await asyncio.sleep(0.5)
            await asyncio.to_thread(bucket.blob("landing/event.csv").upload_from_string, b"a\n1\n")

        uploader = asyncio.ensure_future(upload_soon())
        event = await asyncio.wait_for(anext(trigger.run()), 30)
        await uploader
        return event

    event = asyncio.run(first_event())
    assert event.payload["status"] == "success"
    [received] = event.payload["message"]
    message = received["message"]
    assert message["attributes"]["eventType"] == "OBJECT_FINALIZE"
    assert message["attributes"]["objectId"] == "landing/event.csv"
    assert json.loads(base64.b64decode(message["data"]))["name"] == "landing/event.csv"
    assert _drain(subscriber, sub) == []  # the trigger acked it


def test_notifications_reach_googles_pubsub_emulator(tmp_path, monkeypatch, google_pubsub_emulator):
    """A GCS emulator publishing to Google's own Pub/Sub emulator: GCS's messages are valid there too, and
    a restart creates again, on it, the topic its config names."""
    from google.cloud import pubsub_v1
    from google.cloud.storage.notification import NONE_PAYLOAD_FORMAT, OBJECT_DELETE_EVENT_TYPE

    from devstack.emulators import GcsEmulator
    from devstack.postgres import free_port
    from tests.fixtures.google_pubsub_emulator import client_for

    host = google_pubsub_emulator.host
    publisher = client_for(pubsub_v1.PublisherClient, host)
    subscriber = client_for(pubsub_v1.SubscriberClient, host)
    suffix = uuid.uuid4().hex[:8]
    topic = publisher.topic_path(PROJECT, f"uploads-{suffix}")
    sub = subscriber.subscription_path(PROJECT, f"uploads-sub-{suffix}")
    publisher.create_topic(name=topic, timeout=TIMEOUT)
    subscriber.create_subscription(name=sub, topic=topic, timeout=TIMEOUT)
    gcs = GcsEmulator("gcs-google-pubsub", tmp_path / "gcs", free_port(0), host)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    gcs.start()
    try:
        bucket = _storage_client().create_bucket(f"google-pubsub-{suffix}")
        topic_id = topic.rsplit("/", 1)[1]
        _notification(bucket, topic_id, blob_name_prefix="landing/")
        _notification(bucket, topic_id, event_types=[OBJECT_DELETE_EVENT_TYPE], payload_format=NONE_PAYLOAD_FORMAT)
        blob = bucket.blob("landing/a.csv")
        blob.upload_from_string(b"a\n1\n")
        blob.delete()
        messages = {m.attributes["eventType"]: m for m in _drain(subscriber, sub)}
        assert sorted(messages) == ["OBJECT_DELETE", "OBJECT_FINALIZE"]
        assert json.loads(messages["OBJECT_FINALIZE"].data)["name"] == "landing/a.csv"
        assert messages["OBJECT_DELETE"].data == b"" and messages["OBJECT_DELETE"].attributes["objectId"] == blob.name

        publisher.delete_topic(topic=topic, timeout=TIMEOUT)
        gcs.stop()
        gcs.start()
        assert publisher.get_topic(topic=topic, timeout=TIMEOUT).name == topic
    finally:
        gcs.stop()
        subscriber.delete_subscription(subscription=sub, timeout=TIMEOUT)
        with contextlib.suppress(exceptions.NotFound):  # not there when the restart failed to create it
            publisher.delete_topic(topic=topic, timeout=TIMEOUT)
        subscriber.close()
