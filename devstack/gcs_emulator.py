"""gcp-storage-emulator plus GCS's Pub/Sub notifications, run in-process.

`python -m devstack.gcs_emulator -d DATA_DIR --port 9023` serves gcp-storage-emulator's whole API
with the same on-disk layout (DATA_DIR/.cloudstorage/<bucket>/<object>, which the BigQuery emulator
reads for `gs://` loads) and adds what it lacks: bucket notification configs in GCS's own REST shape,

    POST/GET         /storage/v1/b/{bucket}/notificationConfigs
    GET/DELETE       /storage/v1/b/{bucket}/notificationConfigs/{id}

and, after each finished write (every upload kind, copy, rewrite, compose all end in
`Storage.create_file`) or delete, one message per matching config published to the config's topic
through Google's own Pub/Sub client, which goes wherever PUBSUB_EMULATOR_HOST points. Messages
follow GCS's format: attributes notificationConfig, eventType (OBJECT_FINALIZE, OBJECT_DELETE; an
overwrite sends both, with overwroteGeneration / overwrittenByGeneration), payloadFormat, bucketId,
objectId, objectGeneration, eventTime plus the config's custom_attributes; data is the object's JSON
resource for JSON_API_V1 and empty for NONE. OBJECT_METADATA_UPDATE and OBJECT_ARCHIVE are accepted
in configs but never sent. Configs are kept in DATA_DIR/notification_configs.json, so they survive a
restart. Publishing is synchronous (the upload's response comes after the message is in Pub/Sub);
a failed publish is logged and the upload still succeeds.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import re
from datetime import datetime, timezone
from http import HTTPStatus, server
from pathlib import Path

from gcp_storage_emulator import server as gcs_server
from gcp_storage_emulator.storage import Storage

log = logging.getLogger("devstack.gcs_emulator")

CONFIGS_FILE = "notification_configs.json"
TOPIC_PREFIX = "//pubsub.googleapis.com/"
TOPIC_RE = re.compile(r"^(?://pubsub\.googleapis\.com/)?(projects/[^/]+/topics/[^/]+)$")
EVENT_TYPES = {"OBJECT_FINALIZE", "OBJECT_METADATA_UPDATE", "OBJECT_DELETE", "OBJECT_ARCHIVE"}
PAYLOAD_FORMATS = {"JSON_API_V1", "NONE"}
PUBLISH_TIMEOUT = 10.0


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Notifications:
    """The buckets' notification configs (persisted as JSON) and the publishing of events."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / CONFIGS_FILE
        saved = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.configs: dict[str, dict[str, dict]] = saved.get("configs", {})
        self.last_id: dict[str, int] = saved.get("last_id", {})
        self._publisher = None

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"configs": self.configs, "last_id": self.last_id}, indent=2))
        os.replace(tmp, self.path)

    @property
    def publisher(self):
        if self._publisher is None:
            from google.cloud import pubsub_v1

            self._publisher = pubsub_v1.PublisherClient()  # honours PUBSUB_EMULATOR_HOST
        return self._publisher

    def create(self, bucket: str, body: dict, base_url: str) -> dict:
        """Validate and store a config; raise ValueError with GCS-like messages."""
        match = TOPIC_RE.match(str(body.get("topic", "")))
        if not match:
            raise ValueError("topic must be //pubsub.googleapis.com/projects/{project}/topics/{topic}")
        event_types = list(body.get("event_types") or [])
        if not set(event_types) <= EVENT_TYPES:
            raise ValueError(f"event_types must be among {sorted(EVENT_TYPES)}")
        payload_format = body.get("payload_format") or "NONE"
        if payload_format not in PAYLOAD_FORMATS:
            raise ValueError(f"payload_format must be one of {sorted(PAYLOAD_FORMATS)}")
        self._check_topic(match.group(1))
        config_id = str(self.last_id.get(bucket, 0) + 1)
        resource = {
            "kind": "storage#notification", "id": config_id, "etag": config_id,
            "selfLink": f"{base_url}/storage/v1/b/{bucket}/notificationConfigs/{config_id}",
            "topic": TOPIC_PREFIX + match.group(1), "payload_format": payload_format,
        }
        if event_types:
            resource["event_types"] = event_types
        if body.get("object_name_prefix"):
            resource["object_name_prefix"] = body["object_name_prefix"]
        if body.get("custom_attributes"):
            resource["custom_attributes"] = dict(body["custom_attributes"])
        self.last_id[bucket] = int(config_id)
        self.configs.setdefault(bucket, {})[config_id] = resource
        self._save()
        return resource

    def _check_topic(self, topic: str) -> None:
        # GCS refuses a config whose topic does not exist; other errors are left to publish time.
        from google.api_core import exceptions

        try:
            self.publisher.get_topic(topic=topic, timeout=PUBLISH_TIMEOUT)
        except exceptions.NotFound:
            raise ValueError(f"Cloud Pub/Sub topic {topic} not found") from None
        except exceptions.GoogleAPICallError as exc:
            log.warning("could not check topic %s: %s", topic, exc)

    def delete(self, bucket: str, config_id: str) -> bool:
        found = self.configs.get(bucket, {}).pop(config_id, None) is not None
        if found:
            self._save()
        return found

    def drop_bucket(self, bucket: str) -> None:
        if self.configs.pop(bucket, None) is not None:
            self._save()

    def emit(self, bucket: str, event_type: str, obj: dict, **extra_attributes: str | None) -> None:
        name = obj["name"]
        for config_id, config in sorted(self.configs.get(bucket, {}).items(), key=lambda item: int(item[0])):
            if config.get("event_types") and event_type not in config["event_types"]:
                continue
            if not name.startswith(config.get("object_name_prefix", "")):
                continue
            attributes = {
                **config.get("custom_attributes", {}),
                "notificationConfig": f"projects/_/buckets/{bucket}/notificationConfigs/{config_id}",
                "eventType": event_type, "payloadFormat": config["payload_format"], "bucketId": bucket,
                "objectId": name, "objectGeneration": str(obj.get("generation", "")), "eventTime": _now(),
                **{key: value for key, value in extra_attributes.items() if value},
            }
            data = b""
            if config["payload_format"] == "JSON_API_V1":
                resource = {k: v for k, v in obj.items() if v is not None and k != "acl"}
                if "size" in resource:
                    resource["size"] = str(resource["size"])  # a string in the JSON API
                data = json.dumps(resource).encode()
            topic = config["topic"][len(TOPIC_PREFIX):]
            try:
                self.publisher.publish(topic, data, **attributes).result(timeout=PUBLISH_TIMEOUT)
            except Exception as exc:  # the write itself succeeded, as on GCS
                log.warning("notification %s for gs://%s/%s to %s failed: %s", event_type, bucket, name, topic, exc)


def configured_topics(data_dir: Path) -> set[str]:
    """`projects/{project}/topics/{topic}` of every notification config saved under `data_dir`."""
    path = Path(data_dir) / CONFIGS_FILE
    saved = json.loads(path.read_text()) if path.exists() else {}
    return {config["topic"].removeprefix(TOPIC_PREFIX)
            for configs in saved.get("configs", {}).values() for config in configs.values()}


class NotifyingStorage(Storage):
    """gcp-storage-emulator's Storage, publishing notifications after writes and deletes."""

    def __init__(self, *, notifications: Notifications, **kwargs):
        self.notifications = notifications
        super().__init__(**kwargs)

    def create_file(self, bucket_name, file_name, content, file_obj, file_id=None):
        old = self.objects.get(bucket_name, {}).get(file_name)
        super().create_file(bucket_name, file_name, content, file_obj, file_id)
        new_generation = str(file_obj.get("generation", ""))
        old_generation = str(old.get("generation", "")) if old else None
        self.notifications.emit(bucket_name, "OBJECT_FINALIZE", file_obj, overwroteGeneration=old_generation)
        if old:
            self.notifications.emit(bucket_name, "OBJECT_DELETE", old, overwrittenByGeneration=new_generation)

    def delete_file(self, bucket_name, file_name):
        old = self.objects.get(bucket_name, {}).get(file_name)
        super().delete_file(bucket_name, file_name)  # raises NotFound for a missing object
        self.notifications.emit(bucket_name, "OBJECT_DELETE", old)

    def delete_bucket(self, bucket_name):
        super().delete_bucket(bucket_name)
        self.notifications.drop_bucket(bucket_name)


# -- REST handlers (gcp-storage-emulator's signature: request, response, storage) -------------------
def _error(response, status: HTTPStatus, message: str) -> None:
    response.status = status
    response.json({"error": {"code": status.value, "message": message, "errors": [{"message": message}]}})


def _bucket(request, response, storage) -> str | None:
    bucket = request.params["bucket_name"]
    if storage.get_bucket(bucket) is None:
        _error(response, HTTPStatus.NOT_FOUND, f"The specified bucket does not exist: {bucket}")
        return None
    return bucket


def list_configs(request, response, storage):
    if (bucket := _bucket(request, response, storage)) is not None:
        items = sorted(storage.notifications.configs.get(bucket, {}).values(), key=lambda c: int(c["id"]))
        response.json({"kind": "storage#notifications", "items": items})


def insert_config(request, response, storage):
    if (bucket := _bucket(request, response, storage)) is None:
        return
    body = request.data if isinstance(request.data, dict) else {}
    try:
        response.json(storage.notifications.create(bucket, body, request.base_url))
    except ValueError as exc:
        _error(response, HTTPStatus.BAD_REQUEST, str(exc))


def get_config(request, response, storage):
    if (bucket := _bucket(request, response, storage)) is None:
        return
    config = storage.notifications.configs.get(bucket, {}).get(request.params["notification_id"])
    if config is None:
        _error(response, HTTPStatus.NOT_FOUND, "Notification config not found")
    else:
        response.json(config)


def delete_config(request, response, storage):
    if (bucket := _bucket(request, response, storage)) is None:
        return
    if storage.notifications.delete(bucket, request.params["notification_id"]):
        response.status = HTTPStatus.NO_CONTENT
    else:
        _error(response, HTTPStatus.NOT_FOUND, "Notification config not found")


def notification_routes() -> tuple:
    routes = []
    for prefix in ("/storage/v1", ""):  # "" for clients that drop /storage/v1, like the emulator's own routes
        base = rf"^{re.escape(prefix)}/b/(?P<bucket_name>[-.\w]+)/notificationConfigs"
        routes += [(base + "$", {"GET": list_configs, "POST": insert_config}),
                   (base + r"/(?P<notification_id>[^/]+)$", {"GET": get_config, "DELETE": delete_config})]
    return tuple(routes)


def make_server(host: str, port: int, data_dir: Path) -> server.HTTPServer:
    # Routes are looked up in this module tuple on each request; ours go first, before the
    # catch-all /<bucket>/<object> route would take them.
    if not any(handlers.get("POST") is insert_config for _, handlers in gcs_server.HANDLERS):
        gcs_server.HANDLERS = (*notification_routes(), *gcs_server.HANDLERS)
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    storage = NotifyingStorage(notifications=Notifications(data_dir), data_dir=str(data_dir))
    return server.HTTPServer((host, port), functools.partial(gcs_server.RequestHandler, storage))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.gcs_emulator")
    parser.add_argument("-d", "--data-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9023)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)  # as `-q`: it warns on every response
    httpd = make_server(args.host, args.port, Path(args.data_dir))
    log.warning("GCS emulator on %s:%s, data in %s, Pub/Sub at %s", args.host, args.port, args.data_dir,
                os.environ.get("PUBSUB_EMULATOR_HOST", "(PUBSUB_EMULATOR_HOST unset: Google's endpoint)"))
    httpd.serve_forever()


if __name__ == "__main__":
    main()
