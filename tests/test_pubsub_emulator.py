"""Pub/Sub's contract through Google's official client (google-cloud-pubsub), as any tool uses it, against
devstack's emulator (`ours`, the session's) and Google's own (`google`, tests/fixtures/google_pubsub_emulator.py):
both must behave alike, so a difference between them fails here."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from google.api_core import exceptions

from tests.fixtures.google_pubsub_emulator import client_for

PROJECT = "zoomcamp-local"
TIMEOUT = 10  # seconds, for every single call


@pytest.fixture(scope="module", params=["ours", pytest.param("google", marks=pytest.mark.pubsub_google)])
def emulator_host(request) -> str:
    """host:port of the emulator under test."""
    if request.param == "google":
        return request.getfixturevalue("google_pubsub_emulator").host
    host = request.getfixturevalue("services").env["PUBSUB_EMULATOR_HOST"]
    assert host.startswith("127.0.0.1:")
    return host


@pytest.fixture(scope="module")
def publisher(emulator_host):
    from google.cloud import pubsub_v1

    return client_for(pubsub_v1.PublisherClient, emulator_host)


@pytest.fixture(scope="module")
def subscriber(emulator_host):
    from google.cloud import pubsub_v1

    with client_for(pubsub_v1.SubscriberClient, emulator_host) as client:
        yield client


@pytest.fixture
def topic(publisher):
    name = publisher.topic_path(PROJECT, f"t-{uuid.uuid4().hex[:8]}")
    publisher.create_topic(name=name, timeout=TIMEOUT)
    return name


def _subscription(subscriber, topic, **kwargs) -> str:
    name = subscriber.subscription_path(PROJECT, f"s-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(name=name, topic=topic, timeout=TIMEOUT, **kwargs)
    return name


def _publish(publisher, topic, *payloads: bytes, **attributes) -> list[str]:
    return [publisher.publish(topic, p, **attributes).result(timeout=TIMEOUT) for p in payloads]


def _pull(subscriber, subscription, wait=False, max_messages=10):
    response = subscriber.pull(subscription=subscription, max_messages=max_messages,
                               return_immediately=not wait, timeout=30)
    return list(response.received_messages)


def test_recreating_says_already_exists(publisher, subscriber, topic):
    with pytest.raises(exceptions.AlreadyExists):
        publisher.create_topic(name=topic, timeout=TIMEOUT)
    assert publisher.get_topic(topic=topic, timeout=TIMEOUT).name == topic
    assert topic in [t.name for t in publisher.list_topics(project=f"projects/{PROJECT}", timeout=TIMEOUT)]
    sub = _subscription(subscriber, topic)
    with pytest.raises(exceptions.AlreadyExists):
        subscriber.create_subscription(name=sub, topic=topic, timeout=TIMEOUT)
    got = subscriber.get_subscription(subscription=sub, timeout=TIMEOUT)
    assert (got.topic, got.ack_deadline_seconds) == (topic, 10)
    assert got.message_retention_duration.total_seconds() == 7 * 24 * 3600  # GCP's default
    assert list(publisher.list_topic_subscriptions(topic=topic, timeout=TIMEOUT)) == [sub]
    longest = _subscription(subscriber, topic, ack_deadline_seconds=600)
    assert subscriber.get_subscription(subscription=longest, timeout=TIMEOUT).ack_deadline_seconds == 600


def test_invalid_requests_are_refused(publisher, subscriber, topic):
    for name in ("ab", "1abc", "goog-topic", "a" * 256, "a/b"):
        with pytest.raises(exceptions.InvalidArgument, match=r"Invalid \[topics\] name"):
            publisher.create_topic(name=f"projects/{PROJECT}/topics/{name}", timeout=TIMEOUT)
    assert publisher.create_topic(name=publisher.topic_path(PROJECT, f"A.b~c+d%e_f-{uuid.uuid4().hex[:8]}"),
                                  timeout=TIMEOUT).name
    with pytest.raises(exceptions.InvalidArgument, match=r"Invalid \[subscriptions\] name"):
        subscriber.create_subscription(name=subscriber.subscription_path(PROJECT, "goog-sub"), topic=topic,
                                       timeout=TIMEOUT)
    for seconds in (-1, 601):
        with pytest.raises(exceptions.InvalidArgument):
            _subscription(subscriber, topic, ack_deadline_seconds=seconds)
    with pytest.raises(exceptions.InvalidArgument):
        publisher.api.publish(topic=topic, messages=[{"data": b""}], timeout=TIMEOUT)
    with pytest.raises(exceptions.InvalidArgument):
        publisher.api.publish(topic=topic, messages=[], timeout=TIMEOUT)

    sub, other = _subscription(subscriber, topic), _subscription(subscriber, topic)
    _publish(publisher, topic, b"x")
    [received] = _pull(subscriber, sub)
    with pytest.raises(exceptions.InvalidArgument):
        subscriber.pull(subscription=sub, max_messages=0, timeout=TIMEOUT)
    for subscription, ack_ids in ((sub, []), (sub, ["not-an-ack-id"]), (other, [received.ack_id])):
        with pytest.raises(exceptions.InvalidArgument):
            subscriber.acknowledge(subscription=subscription, ack_ids=ack_ids, timeout=TIMEOUT)
        with pytest.raises(exceptions.InvalidArgument):
            subscriber.modify_ack_deadline(subscription=subscription, ack_ids=ack_ids, ack_deadline_seconds=0,
                                           timeout=TIMEOUT)
    with pytest.raises(exceptions.InvalidArgument):
        subscriber.modify_ack_deadline(subscription=sub, ack_ids=[received.ack_id], ack_deadline_seconds=-1,
                                       timeout=TIMEOUT)
    subscriber.acknowledge(subscription=sub, ack_ids=[received.ack_id], timeout=TIMEOUT)  # still valid
    assert _pull(subscriber, sub) == []


def test_unknown_names_are_not_found(publisher, subscriber, topic):
    missing = subscriber.subscription_path(PROJECT, "no-such-subscription")
    with pytest.raises(exceptions.NotFound):
        subscriber.pull(subscription=missing, max_messages=1, timeout=TIMEOUT)
    with pytest.raises(exceptions.NotFound):
        subscriber.get_subscription(subscription=missing, timeout=TIMEOUT)
    with pytest.raises(exceptions.NotFound):
        subscriber.acknowledge(subscription=missing, ack_ids=["1-1"], timeout=TIMEOUT)
    with pytest.raises(exceptions.NotFound):
        subscriber.create_subscription(name=missing, topic=publisher.topic_path(PROJECT, "no-such-topic"),
                                       timeout=TIMEOUT)
    with pytest.raises(exceptions.NotFound):
        _publish(publisher, publisher.topic_path(PROJECT, "no-such-topic"), b"x")
    sub = _subscription(subscriber, topic)
    subscriber.delete_subscription(subscription=sub, timeout=TIMEOUT)
    with pytest.raises(exceptions.NotFound):
        subscriber.delete_subscription(subscription=sub, timeout=TIMEOUT)


def test_publish_pull_ack_in_order_with_attributes(publisher, subscriber, topic):
    sub = _subscription(subscriber, topic)
    ids = _publish(publisher, topic, b"one", b"two", b"three", source="test")
    assert len(set(ids)) == 3
    received = _pull(subscriber, sub)
    assert [m.message.data for m in received] == [b"one", b"two", b"three"]
    assert [m.message.message_id for m in received] == ids
    assert all(m.message.attributes == {"source": "test"} for m in received)
    assert all(abs(m.message.publish_time.timestamp() - time.time()) < 60 for m in received)
    subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in received], timeout=TIMEOUT)
    assert _pull(subscriber, sub) == []


def test_long_poll_returns_when_a_message_arrives(publisher, subscriber, topic):
    sub = _subscription(subscriber, topic)
    threading.Timer(0.5, _publish, (publisher, topic, b"late")).start()
    started = time.monotonic()
    received = _pull(subscriber, sub, wait=True)
    assert [m.message.data for m in received] == [b"late"]
    assert time.monotonic() - started < 5


def _nack(subscriber, subscription, received) -> None:
    subscriber.modify_ack_deadline(subscription=subscription, ack_ids=[m.ack_id for m in received],
                                   ack_deadline_seconds=0, timeout=TIMEOUT)


def test_nacked_message_goes_to_the_back_of_the_queue(publisher, subscriber, topic):
    sub = _subscription(subscriber, topic)
    _publish(publisher, topic, b"1", b"2", b"3")
    first = _pull(subscriber, sub, max_messages=1)
    _nack(subscriber, sub, first)
    again = _pull(subscriber, sub)
    assert [m.message.data for m in again] == [b"2", b"3", b"1"]
    assert again[2].message.message_id == first[0].message.message_id
    assert again[2].ack_id != first[0].ack_id
    subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in again], timeout=TIMEOUT)
    subscriber.acknowledge(subscription=sub, ack_ids=[first[0].ack_id], timeout=TIMEOUT)  # stale: ignored
    assert _pull(subscriber, sub) == []


def test_unacked_message_is_redelivered_after_its_deadline(publisher, subscriber, topic):
    sub = _subscription(subscriber, topic)
    _publish(publisher, topic, b"slow")
    [first] = _pull(subscriber, sub)
    subscriber.modify_ack_deadline(subscription=sub, ack_ids=[first.ack_id], ack_deadline_seconds=1, timeout=TIMEOUT)
    assert _pull(subscriber, sub) == []  # still leased
    started = time.monotonic()
    [second] = _pull(subscriber, sub, wait=True)  # the long poll wakes up when the lease expires
    assert second.message.message_id == first.message.message_id
    assert 0.5 < time.monotonic() - started < 5
    subscriber.acknowledge(subscription=sub, ack_ids=[second.ack_id], timeout=TIMEOUT)
    assert _pull(subscriber, sub) == []


def test_expired_messages_come_first_in_publish_order(publisher, subscriber, topic):
    sub = _subscription(subscriber, topic)
    _publish(publisher, topic, b"1", b"2", b"3", b"4")
    one, two = _pull(subscriber, sub, max_messages=2)
    subscriber.modify_ack_deadline(subscription=sub, ack_ids=[two.ack_id], ack_deadline_seconds=1, timeout=TIMEOUT)
    subscriber.modify_ack_deadline(subscription=sub, ack_ids=[one.ack_id], ack_deadline_seconds=2, timeout=TIMEOUT)
    _nack(subscriber, sub, _pull(subscriber, sub, max_messages=1))  # 3 goes behind 4
    time.sleep(2.5)  # both leases expire, 2's first
    again = _pull(subscriber, sub)
    assert [m.message.data for m in again] == [b"1", b"2", b"4", b"3"]
    subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in again], timeout=TIMEOUT)
    assert _pull(subscriber, sub) == []


def test_messages_fan_out_to_subscriptions_existing_at_publish_time(publisher, subscriber, topic):
    first, second = _subscription(subscriber, topic), _subscription(subscriber, topic)
    _publish(publisher, topic, b"both")
    late = _subscription(subscriber, topic)
    for sub in (first, second):
        assert [m.message.data for m in _pull(subscriber, sub)] == [b"both"]
    assert _pull(subscriber, late) == []


def test_streaming_pull_with_subscribe(publisher, subscriber, topic):
    sub = _subscription(subscriber, topic)
    got, done, nacked = [], threading.Event(), set()

    def callback(message):
        if message.data == b"b" and not nacked:  # nack once: it must come back on the stream
            nacked.add(message.message_id)
            message.nack()
            return
        got.append(message.data)
        message.ack()
        if len(got) == 3:
            done.set()

    future = subscriber.subscribe(sub, callback)
    try:
        _publish(publisher, topic, b"a", b"b", b"c")
        assert done.wait(20), got
    finally:
        future.cancel()
        future.result(timeout=TIMEOUT)
    assert sorted(got) == [b"a", b"b", b"c"] and nacked
    time.sleep(0.5)  # acks are sent in the background, batched
    assert _pull(subscriber, sub) == []


def test_streaming_pull_on_an_unknown_subscription_fails(subscriber):
    future = subscriber.subscribe(subscriber.subscription_path(PROJECT, "no-such-subscription"), lambda m: m.ack())
    with pytest.raises(exceptions.NotFound):
        future.result(timeout=20)
