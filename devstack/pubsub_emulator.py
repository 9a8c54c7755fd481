"""A small Pub/Sub emulator: the gRPC subset Google's official clients use, on loopback.

`python -m devstack.pubsub_emulator --port 8681`, then any client with
PUBSUB_EMULATOR_HOST=127.0.0.1:8681 reaches it (google-cloud-pubsub, the Airflow provider's hooks
and triggers). Served:

- Publisher: CreateTopic, GetTopic, ListTopics, ListTopicSubscriptions, DeleteTopic, Publish.
- Subscriber: CreateSubscription, GetSubscription, ListSubscriptions, DeleteSubscription, Pull
  (long-polls up to --pull-wait seconds unless return_immediately), Acknowledge,
  ModifyAckDeadline (0 s = nack), StreamingPull (what `SubscriberClient.subscribe()` uses).

At-least-once like the real service: a message published to a topic is copied to every
subscription that exists at that moment; a delivered message not acked within its ack deadline is
delivered again (with a new ack id); an acked one is gone. Each subscription hands messages out in
publish order, as Google's own emulator does: messages whose ack deadline has passed come first (in
publish order), and a nacked message (ack deadline 0) goes to the back of the queue. Unknown names
give NOT_FOUND, re-creating gives ALREADY_EXISTS; names breaking GCP's resource-name rules, empty
messages, and ack ids that are malformed or another subscription's give INVALID_ARGUMENT.

Not served: snapshots/seek, schemas, IAM, filters, dead-letter and retry policies, exactly-once
delivery, push subscriptions, message retention settings. State is in memory only: a restart
forgets every topic, subscription and message.
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import logging
import re
import time
from dataclasses import dataclass, field

import grpc
from google.protobuf import empty_pb2
from google.pubsub_v1.types import pubsub

log = logging.getLogger("devstack.pubsub_emulator")

# GCP's resource names: a letter, then 2-254 of letters, digits and -_.~+%, not starting with "goog".
RESOURCE_ID = r"(?!goog)[A-Za-z][-A-Za-z0-9_.~+%]{2,254}"
TOPIC_RE = re.compile(rf"^projects/[^/]+/topics/{RESOURCE_ID}$")
SUBSCRIPTION_RE = re.compile(rf"^projects/[^/]+/subscriptions/{RESOURCE_ID}$")
DELETED_TOPIC = "_deleted-topic_"
DEFAULT_ACK_DEADLINE = 10  # seconds, as on GCP
MAX_ACK_DEADLINE = 600
DEFAULT_RETENTION = 7 * 24 * 3600  # seconds: what GCP reports for a subscription (messages here stay until acked)
STREAM_BATCH = 100


def pb(proto_plus_type):
    """The raw protobuf class behind a proto-plus type from google.pubsub_v1.types."""
    return proto_plus_type.pb()


@dataclass
class Lease:
    seq: int
    message: object  # raw PubsubMessage
    deadline: float


@dataclass
class Subscription:
    resource: object  # raw Subscription
    # (seq, message) waiting for delivery: published ones in publish order, nacked ones appended
    pending: list = field(default_factory=list)
    # (seq, message) whose lease expired, in publish order: delivered before `pending`
    expired: list = field(default_factory=list)
    leases: dict[str, Lease] = field(default_factory=dict)  # ack id -> lease
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def expire(self, now: float) -> None:
        for ack_id in [a for a, lease in self.leases.items() if lease.deadline <= now]:
            lease = self.leases.pop(ack_id)
            bisect.insort(self.expired, (lease.seq, lease.message), key=lambda item: item[0])

    def nack(self, ack_id: str) -> None:
        lease = self.leases.pop(ack_id, None)
        if lease is not None:
            self.pending.append((lease.seq, lease.message))

    def take(self, limit: int) -> list:
        """Up to `limit` (seq, message) to deliver: expired leases first, then the queue."""
        batch, self.expired = self.expired[:limit], self.expired[limit:]
        taken, self.pending = self.pending[:limit - len(batch)], self.pending[limit - len(batch):]
        return batch + taken

    def next_expiry(self) -> float | None:
        return min((lease.deadline for lease in self.leases.values()), default=None)


class PubSubState:
    def __init__(self, pull_wait: float):
        self.pull_wait = pull_wait
        self.topics: dict[str, object] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self._seq = itertools.count(1)
        self._ack_ids = itertools.count(1)

    async def _subscription(self, name: str, context) -> Subscription:
        sub = self.subscriptions.get(name)
        if sub is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Subscription does not exist (resource={name})")
        return sub

    @staticmethod
    async def _check_ack_ids(name: str, ack_ids, context) -> None:
        """Ack ids are `<subscription>:<n>`, as Google's emulator gives them; stale ones pass (they are ignored)."""
        if not ack_ids:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "No ack ids specified")
        for ack_id in ack_ids:
            owner, _, number = ack_id.rpartition(":")
            if owner != name or not number.isdigit():
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"Subscription {name} received an invalid ack id: {ack_id}")

    # -- Publisher -----------------------------------------------------------------------------
    async def create_topic(self, request, context):
        if not TOPIC_RE.match(request.name):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid [topics] name: ({request.name})")
        if request.name in self.topics:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "Topic already exists")
        topic = pb(pubsub.Topic)()
        topic.CopyFrom(request)
        self.topics[request.name] = topic
        return topic

    async def get_topic(self, request, context):
        if request.topic not in self.topics:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Topic not found (resource={request.topic})")
        return self.topics[request.topic]

    async def list_topics(self, request, context):
        prefix = f"{request.project}/topics/"
        return pb(pubsub.ListTopicsResponse)(topics=[t for n, t in sorted(self.topics.items()) if n.startswith(prefix)])

    async def delete_topic(self, request, context):
        if self.topics.pop(request.topic, None) is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Topic not found (resource={request.topic})")
        for sub in self.subscriptions.values():
            if sub.resource.topic == request.topic:
                sub.resource.topic = DELETED_TOPIC
        return empty_pb2.Empty()

    async def publish(self, request, context):
        if request.topic not in self.topics:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Topic not found (resource={request.topic})")
        if not request.messages:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "The request contains no messages")
        if any(not m.data and not m.attributes for m in request.messages):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Some messages are empty: a message needs "
                                "data or at least one attribute")
        receivers = [s for s in self.subscriptions.values() if s.resource.topic == request.topic]
        ids = []
        for message in request.messages:
            seq = next(self._seq)
            stored = pb(pubsub.PubsubMessage)()
            stored.CopyFrom(message)
            stored.message_id = str(seq)
            stored.publish_time.GetCurrentTime()
            ids.append(stored.message_id)
            for sub in receivers:
                sub.pending.append((seq, stored))
        for sub in receivers:
            async with sub.changed:
                sub.changed.notify_all()
        return pb(pubsub.PublishResponse)(message_ids=ids)

    # -- Subscriber: administration ------------------------------------------------------------
    async def create_subscription(self, request, context):
        if not SUBSCRIPTION_RE.match(request.name):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid [subscriptions] name: ({request.name})")
        if request.name in self.subscriptions:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "Subscription already exists")
        if request.topic not in self.topics:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Topic not found (resource={request.topic})")
        if request.push_config.push_endpoint:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Push subscriptions are not emulated")
        if not 0 <= request.ack_deadline_seconds <= MAX_ACK_DEADLINE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"ack_deadline_seconds out of bounds "
                                f"(0 for the default {DEFAULT_ACK_DEADLINE}, at most {MAX_ACK_DEADLINE})")
        resource = pb(pubsub.Subscription)()
        resource.CopyFrom(request)
        resource.ack_deadline_seconds = resource.ack_deadline_seconds or DEFAULT_ACK_DEADLINE
        resource.push_config.SetInParent()
        if not resource.HasField("message_retention_duration"):
            resource.message_retention_duration.seconds = DEFAULT_RETENTION
        self.subscriptions[request.name] = Subscription(resource)
        return resource

    async def get_subscription(self, request, context):
        return (await self._subscription(request.subscription, context)).resource

    async def list_subscriptions(self, request, context):
        prefix = f"{request.project}/subscriptions/"
        found = [s.resource for n, s in sorted(self.subscriptions.items()) if n.startswith(prefix)]
        return pb(pubsub.ListSubscriptionsResponse)(subscriptions=found)

    async def list_topic_subscriptions(self, request, context):
        if request.topic not in self.topics:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Topic not found (resource={request.topic})")
        found = [n for n, s in sorted(self.subscriptions.items()) if s.resource.topic == request.topic]
        return pb(pubsub.ListTopicSubscriptionsResponse)(subscriptions=found)

    async def delete_subscription(self, request, context):
        sub = await self._subscription(request.subscription, context)
        del self.subscriptions[request.subscription]
        async with sub.changed:  # wake long-polls and streams on it
            sub.changed.notify_all()
        return empty_pb2.Empty()

    # -- Subscriber: delivery ------------------------------------------------------------------
    def _deliver(self, name: str, sub: Subscription, limit: int, deadline_seconds: int) -> list:
        now = time.monotonic()
        sub.expire(now)
        received = []
        for seq, message in sub.take(limit):
            ack_id = f"{name}:{next(self._ack_ids)}"
            sub.leases[ack_id] = Lease(seq, message, now + deadline_seconds)
            received.append(pb(pubsub.ReceivedMessage)(ack_id=ack_id, message=message))
        return received

    async def _wait(self, sub: Subscription, until: float) -> None:
        """Wait until something is published, a lease expires, or `until` (monotonic)."""
        now = time.monotonic()
        expiry = sub.next_expiry()
        timeout = max(0.0, min(until, expiry if expiry is not None else until) - now)
        async with sub.changed:
            try:
                await asyncio.wait_for(sub.changed.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def _alive(self, name: str, sub: Subscription) -> bool:
        return self.subscriptions.get(name) is sub

    async def pull(self, request, context):
        sub = await self._subscription(request.subscription, context)
        if request.max_messages <= 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "No max_messages specified (it must be positive)")
        until = time.monotonic() + (0 if request.return_immediately else self.pull_wait)
        while True:
            received = self._deliver(request.subscription, sub, request.max_messages,
                                     sub.resource.ack_deadline_seconds)
            if received or time.monotonic() >= until or not self._alive(request.subscription, sub):
                return pb(pubsub.PullResponse)(received_messages=received)
            await self._wait(sub, until)

    def _settle(self, sub: Subscription, ack_ids=(), modify_ids=(), modify_seconds=()) -> None:
        for ack_id in ack_ids:
            sub.leases.pop(ack_id, None)  # unknown or expired ids are ignored, like GCP
        now = time.monotonic()
        sub.expire(now)
        for ack_id, seconds in zip(modify_ids, modify_seconds):
            lease = sub.leases.get(ack_id)
            if lease is None:
                continue
            if seconds <= 0:
                sub.nack(ack_id)
            else:
                lease.deadline = now + min(seconds, MAX_ACK_DEADLINE)

    async def acknowledge(self, request, context):
        sub = await self._subscription(request.subscription, context)
        await self._check_ack_ids(request.subscription, request.ack_ids, context)
        self._settle(sub, ack_ids=request.ack_ids)
        return empty_pb2.Empty()

    async def modify_ack_deadline(self, request, context):
        sub = await self._subscription(request.subscription, context)
        await self._check_ack_ids(request.subscription, request.ack_ids, context)
        if request.ack_deadline_seconds < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Ack deadline cannot be negative")
        seconds = [request.ack_deadline_seconds] * len(request.ack_ids)
        self._settle(sub, modify_ids=request.ack_ids, modify_seconds=seconds)
        if request.ack_deadline_seconds == 0:
            async with sub.changed:
                sub.changed.notify_all()
        return empty_pb2.Empty()

    async def streaming_pull(self, request_iterator, context):
        first = await anext(request_iterator, None)
        if first is None:
            return
        name = first.subscription
        sub = await self._subscription(name, context)
        stream = {"deadline": first.stream_ack_deadline_seconds or sub.resource.ack_deadline_seconds,
                  "max_outstanding": first.max_outstanding_messages}
        mine: set[str] = set()  # ack ids delivered on this stream, for flow control

        async def read_requests():  # heartbeats, deadline changes, acks and modacks sent on the stream
            try:
                async for req in request_iterator:
                    if req.stream_ack_deadline_seconds:
                        stream["deadline"] = req.stream_ack_deadline_seconds
                    self._settle(sub, req.ack_ids, req.modify_deadline_ack_ids, req.modify_deadline_seconds)
                    async with sub.changed:
                        sub.changed.notify_all()
            finally:  # the client closed its side: end the response stream too
                async with sub.changed:
                    sub.changed.notify_all()

        self._settle(sub, first.ack_ids, first.modify_deadline_ack_ids, first.modify_deadline_seconds)
        reader = asyncio.ensure_future(read_requests())
        try:
            while self._alive(name, sub) and not reader.done():
                mine.intersection_update(sub.leases)
                room = STREAM_BATCH
                if stream["max_outstanding"] > 0:
                    room = min(room, stream["max_outstanding"] - len(mine))
                received = self._deliver(name, sub, room, stream["deadline"]) if room > 0 else []
                if received:
                    mine.update(m.ack_id for m in received)
                    yield pb(pubsub.StreamingPullResponse)(received_messages=received)
                else:
                    await self._wait(sub, time.monotonic() + 5)
            if not self._alive(name, sub):
                await context.abort(grpc.StatusCode.NOT_FOUND, f"Subscription does not exist (resource={name})")
        finally:
            reader.cancel()


def _handlers(state: PubSubState) -> list:
    def unary(fn, request_type):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=pb(request_type).FromString,
            response_serializer=lambda message: message.SerializeToString())

    publisher = {
        "CreateTopic": unary(state.create_topic, pubsub.Topic),
        "GetTopic": unary(state.get_topic, pubsub.GetTopicRequest),
        "ListTopics": unary(state.list_topics, pubsub.ListTopicsRequest),
        "DeleteTopic": unary(state.delete_topic, pubsub.DeleteTopicRequest),
        "ListTopicSubscriptions": unary(state.list_topic_subscriptions, pubsub.ListTopicSubscriptionsRequest),
        "Publish": unary(state.publish, pubsub.PublishRequest),
    }
    subscriber = {
        "CreateSubscription": unary(state.create_subscription, pubsub.Subscription),
        "GetSubscription": unary(state.get_subscription, pubsub.GetSubscriptionRequest),
        "ListSubscriptions": unary(state.list_subscriptions, pubsub.ListSubscriptionsRequest),
        "DeleteSubscription": unary(state.delete_subscription, pubsub.DeleteSubscriptionRequest),
        "Pull": unary(state.pull, pubsub.PullRequest),
        "Acknowledge": unary(state.acknowledge, pubsub.AcknowledgeRequest),
        "ModifyAckDeadline": unary(state.modify_ack_deadline, pubsub.ModifyAckDeadlineRequest),
        "StreamingPull": grpc.stream_stream_rpc_method_handler(
            state.streaming_pull, request_deserializer=pb(pubsub.StreamingPullRequest).FromString,
            response_serializer=lambda message: message.SerializeToString()),
    }
    return [grpc.method_handlers_generic_handler("google.pubsub.v1.Publisher", publisher),
            grpc.method_handlers_generic_handler("google.pubsub.v1.Subscriber", subscriber)]


async def serve(host: str, port: int, pull_wait: float) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(_handlers(PubSubState(pull_wait)))
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    log.warning("Pub/Sub emulator listening on %s:%s (state in memory)", host, bound)
    await server.wait_for_termination()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.pubsub_emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8681)
    parser.add_argument("--pull-wait", type=float, default=15.0,
                        help="seconds a Pull with return_immediately=false waits for messages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args.host, args.port, args.pull_wait))


if __name__ == "__main__":
    main()
