"""Walkthrough 3_5, event-driven ingest: the watched asset and the reading of its events.

upload → GCS notification (OBJECT_FINALIZE, JSON_API_V1, prefix landing/) → topic file-upload-events
→ subscription file-upload-sub → PubsubPullTrigger in the triggerer (the asset's AssetWatcher) →
asset event → a run of `event-file-ingest` → BigQuery YellowCab.raw_data.

The trigger acks a pulled batch and yields it as one event; Airflow may fold several events into one
run, and Pub/Sub may deliver a message twice, so `objects_to_load` reads every event of the run and
keeps each (bucket, object, generation) once; `yellow_cab.loader.load_object` skips generations already loaded.
Events naming another bucket than the watched one are refused: whoever may publish to the topic must not
choose what the DAG reads.

The trigger acks before Airflow stores the event, a notification whose publish failed is gone, and a
topic that did not exist drops them all: `unloaded_objects` is what `event-file-ingest-reconcile` loads,
every object generation under landing/ that ingest_log lacks.
"""
from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable, Mapping

from include.zoomcamp import config
from include.zoomcamp.errors import PermanentError
from include.zoomcamp.walkthrough.yellow_cab.files import FORMATS, list_data_objects, source_format
from include.zoomcamp.walkthrough.yellow_cab.loader import logged_generations

log = logging.getLogger(__name__)

FINALIZE = "OBJECT_FINALIZE"
MANUAL_RUN = "manual-run"
MAX_MESSAGES = 50  # per pull; one pull = one asset event
POKE_INTERVAL = 2.0  # seconds between empty pulls (each pull itself waits for messages)
RECONCILE = "reconcile"  # the event type ingest_log records for loads of the reconciliation
WATCHER_NAME = "file_upload_watcher"
ASSET_NAME = "yellow_cab_landing_files"


class IngestLogMissing(PermanentError):
    """Dataset YellowCab or its ingest_log does not exist: event-file-ingest-setup creates them."""


def watched_project() -> str:
    """The project whose subscription the watcher pulls: fixed when the DAG file is parsed."""
    return config.gcp_value(config.GCP_PROJECT_ID_VAR)


def watched_bucket() -> str:
    """The bucket whose landing/ prefix the asset stands for: fixed when the DAG file is parsed."""
    return config.gcp_value(config.GCP_BUCKET_NAME_VAR)


def landing_uri(bucket: str | None = None) -> str:
    return f"gs://{bucket or watched_bucket()}/{config.EVENT_PREFIX}"


def landing_asset():
    """The asset standing for gs://<bucket>/landing/, watched through Pub/Sub. Parse-time safe:
    project and bucket come from the environment (config.gcp_value), never from the metadata database."""
    from airflow.providers.google.cloud.triggers.pubsub import PubsubPullTrigger
    from airflow.sdk import Asset, AssetWatcher

    trigger = PubsubPullTrigger(
        project_id=watched_project(),
        subscription=config.EVENT_SUBSCRIPTION,
        max_messages=MAX_MESSAGES,
        ack_messages=True,  # acked before the event is stored: loads must be idempotent (they are)
        gcp_conn_id=config.GCP_CONN_ID,
        poke_interval=POKE_INTERVAL,
        return_immediately=False,
    )
    return Asset(name=ASSET_NAME, uri=landing_uri(),
                 watchers=[AssetWatcher(name=WATCHER_NAME, trigger=trigger)])


def messages_of(events: Iterable) -> list[dict]:
    """Every Pub/Sub message in the events (objects with `.extra`, or the extra dicts themselves)."""
    messages = []
    for event in events:
        extra = event if isinstance(event, Mapping) else (getattr(event, "extra", None) or {})
        payload = extra.get("payload") or {}
        if not extra.get("from_trigger") or payload.get("status") != "success":
            log.warning("Ignoring an asset event that is not a Pub/Sub batch: %s", extra)
            continue
        for received in payload.get("message") or []:
            messages.append(received.get("message") or {})
    return messages


def objects_to_load(events: Iterable, prefix: str = config.EVENT_PREFIX,
                    bucket: str | None = None) -> tuple[list[dict], list[dict]]:
    """(objects to load, skipped ones with the reason), each object once per generation, in event order.
    Only objects of `bucket` (default: the watched one) are loaded; others are refused with a warning."""
    watched = bucket or watched_bucket()
    selected, skipped, seen = [], [], set()
    for message in messages_of(events):
        attrs = message.get("attributes") or {}
        obj = {"bucket": attrs.get("bucketId", ""), "object_name": attrs.get("objectId", ""),
               "generation": attrs.get("objectGeneration", ""), "event_type": attrs.get("eventType", ""),
               "message_id": message.get("message_id", "")}
        key = (obj["bucket"], obj["object_name"], obj["generation"])
        uri = f"gs://{key[0]}/{key[1]}#{key[2]}"
        reason = None
        if obj["event_type"] != FINALIZE:
            reason = f"event {obj['event_type'] or '(none)'} is not {FINALIZE}"
        elif not (obj["bucket"] and obj["object_name"] and obj["generation"]):
            reason = "message lacks bucketId/objectId/objectGeneration"
        elif obj["bucket"] != watched:
            reason = f"refused: bucket {obj['bucket']} is not the watched bucket {watched}"
            log.warning("Refusing %s (message %s): %s", uri, obj["message_id"], reason)
        elif not obj["object_name"].startswith(prefix):
            reason = f"outside {prefix}"
        elif source_format(obj["object_name"]) is None:
            reason = f"not a data file ({posixpath.splitext(obj['object_name'])[1] or 'no extension'}; "
            reason += "expected .parquet or .csv)"
        elif key in seen:
            reason = "duplicate message in this run"
        if reason:
            if not reason.startswith("refused"):
                log.info("Skipping %s (message %s): %s", uri, obj["message_id"], reason)
            skipped.append({**obj, "reason": reason})
            continue
        seen.add(key)
        log.info("To load: %s (%s, message %s)", uri, obj["event_type"], obj["message_id"])
        selected.append(obj)
    return selected, skipped


def manual_object(object_name: str, bucket: str | None = None) -> list[dict]:
    """A run without events: log the defaults the walkthrough's flow shows, and load `object_name` if given."""
    defaults = {"bucket": MANUAL_RUN, "object_name": MANUAL_RUN, "generation": MANUAL_RUN, "event_type": MANUAL_RUN}
    log.info("No triggering events (manual run): %s", defaults)
    if not object_name:
        log.info("Param object_name is empty: nothing to load")
        return []
    bucket = bucket or watched_bucket()
    name = object_name.removeprefix(f"gs://{bucket}/")
    return [{"bucket": bucket, "object_name": name, "generation": "",
             "event_type": MANUAL_RUN, "message_id": ""}]


def unloaded_objects(bucket: str, project: str, dataset: str = config.YELLOW_CAB_DATASET,
                     prefix: str = config.EVENT_PREFIX, conn_id: str = config.GCP_CONN_ID) -> list[dict]:
    """Every .parquet/.csv object under `prefix` of `bucket` whose live generation `dataset.ingest_log` does not
    record, by name (`{"bucket", "object_name", "generation"}`). A missing bucket holds nothing to load; a
    missing dataset or ingest_log raises IngestLogMissing."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    if GCSHook(gcp_conn_id=conn_id).get_conn().lookup_bucket(bucket) is None:
        log.warning("Bucket gs://%s does not exist: nothing to reconcile (event-file-ingest-setup creates it)",
                    bucket)
        return []
    from google.api_core import exceptions

    objects = list_data_objects(bucket, prefix, conn_id, formats=tuple(FORMATS.values()))
    if not objects:
        return []
    try:
        loaded = logged_generations(bucket, prefix, project=project, dataset=dataset, conn_id=conn_id)
    except exceptions.NotFound as exc:  # dataset or ingest_log
        raise IngestLogMissing(f"{exc.message}: run event-file-ingest-setup first") from None
    return [o for o in objects if (o["object_name"], o["generation"]) not in loaded]


def ensure_bucket_notification(bucket: str, project: str, topic: str = config.EVENT_TOPIC,
                               prefix: str = config.EVENT_PREFIX, conn_id: str = config.GCP_CONN_ID) -> str:
    """The bucket's OBJECT_FINALIZE/JSON_API_V1 notification for `prefix` to `topic`: its id, created if
    absent (no operator exists for it; this is the storage client of GCSHook). Idempotent."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from google.cloud.storage.notification import JSON_API_V1_PAYLOAD_FORMAT

    gcs_bucket = GCSHook(gcp_conn_id=conn_id).get_conn().bucket(bucket)
    for existing in gcs_bucket.list_notifications():
        if ((existing.topic_project, existing.topic_name) == (project, topic)
                and existing.blob_name_prefix == prefix
                and FINALIZE in (existing.event_types or [FINALIZE])
                and existing.payload_format == JSON_API_V1_PAYLOAD_FORMAT):
            log.info("gs://%s already notifies %s of %s under %s (config %s)", bucket, topic, FINALIZE, prefix,
                     existing.notification_id)
            return existing.notification_id
    notification = gcs_bucket.notification(topic_name=topic, topic_project=project, event_types=[FINALIZE],
                                           blob_name_prefix=prefix, payload_format=JSON_API_V1_PAYLOAD_FORMAT)
    notification.create()
    log.info("Created gs://%s notification %s: %s under %s -> projects/%s/topics/%s", bucket,
             notification.notification_id, FINALIZE, prefix, project, topic)
    return notification.notification_id
