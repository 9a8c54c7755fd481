"""The Pub/Sub, GCS and BigQuery emulators on loopback, so flows 06-09 run without a cloud account.

The DAGs do not know about them: Google's clients read PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST
and BIGQUERY_EMULATOR_HOST, and connection `google_cloud_default` uses anonymous credentials. The
BigQuery emulator resolves `gs://bucket/object` under the GCS emulator's data directory, so load
jobs from GCS read the objects the DAGs uploaded. The GCS emulator publishes its bucket
notifications to the Pub/Sub emulator.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devstack import procs

PROJECT_ID = "zoomcamp-local"
PUBSUB_TIMEOUT = 10.0  # seconds, per call
REPO_ROOT = Path(__file__).resolve().parent.parent


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def wait_for_port(port: int, timeout: float = 60.0, what: str = "service", log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    tail = log.read_text()[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not open 127.0.0.1:{port} within {timeout:.0f}s\n{tail}")


def install_duckdb_spatial() -> None:
    """Install DuckDB's spatial extension from the duckdb-extension-spatial wheel (no download)."""
    import duckdb
    import duckdb_extension_spatial

    root = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    files = sorted(root.glob(f"v{duckdb.__version__}/spatial.duckdb_extension"))
    if not files:
        raise RuntimeError(f"duckdb-extension-spatial has no extension for DuckDB {duckdb.__version__} under {root}")
    with duckdb.connect() as con:
        con.execute(f"INSTALL '{files[0]}'")


@dataclass
class Emulator:
    name: str
    data_dir: Path
    port: int
    # The address it listens on: loopback here; every interface of its container (devstack.emulator_service).
    bind = "127.0.0.1"

    @property
    def pid_file(self) -> Path:
        return self.data_dir.parent / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def running_pid(self) -> int | None:
        """The pid in the pid file while it still names the process this emulator started (same boot, same
        start time), else None: a pid reused by another process is not this emulator's."""
        try:
            record = json.loads(self.pid_file.read_text())
            pid, started, boot = record["pid"], record["started"], record["boot_id"]
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return pid if boot == procs.boot_id() and procs.alive(pid, started) else None

    def is_running(self) -> bool:
        return self.running_pid() is not None

    def _spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        record = {"pid": proc.pid, "started": procs.start_time(proc.pid), "boot_id": procs.boot_id()}
        self.pid_file.write_text(json.dumps(record))
        wait_for_port(self.port, what=self.name, log=self.log_file)

    def stop(self) -> None:
        """Stop this emulator's process group; a pid file naming another process (or none) is only removed."""
        pid = self.running_pid()
        if pid is not None:
            started = procs.start_time(pid)
            os.killpg(pid, signal.SIGTERM)  # its own group: started with start_new_session
            for _ in range(50):
                try:
                    os.waitpid(pid, os.WNOHANG)  # reap it if this process started it (else it stays a zombie)
                except ChildProcessError:
                    pass
                if not procs.alive(pid, started):
                    break
                time.sleep(0.1)
            else:
                os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)


def ensure_bucket(gcs_url: str, bucket: str, project: str = PROJECT_ID) -> None:
    """Create `bucket` on the GCS emulator at `gcs_url` unless it exists (GCS's JSON API)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{gcs_url}/storage/v1/b?project={project}", method="POST",
                                     data=json.dumps({"name": bucket}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=30).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # 409: it exists
            raise


class PubSubEmulator(Emulator):
    """devstack.pubsub_emulator (gRPC, state in memory only)."""

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"  # PUBSUB_EMULATOR_HOST takes host:port, no scheme

    def start(self) -> None:
        if not self.is_running():
            self._spawn([sys.executable, "-m", "devstack.pubsub_emulator", "--host", self.bind,
                         "--port", str(self.port)], env={"PYTHONPATH": str(REPO_ROOT)})


def restore_notification_topics(pubsub_host: str, topics: set[str]) -> list[str]:
    """Create `topics` (projects/P/topics/T) where missing, and on the event-driven ingest's topic its
    subscription: a Pub/Sub emulator forgets them at a restart while the bucket notifications publishing
    to them persist. Only Google's Pub/Sub client API is used, so any emulator at `pubsub_host` will do.
    Returns what was created."""
    import grpc
    from google.api_core import exceptions
    from google.pubsub_v1 import PublisherClient, SubscriberClient
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    from include.zoomcamp import config

    created = []
    with grpc.insecure_channel(pubsub_host) as channel:
        publisher = PublisherClient(transport=PublisherGrpcTransport(channel=channel))
        subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
        for topic in sorted(topics):
            project, name = topic.split("/")[1], topic.rsplit("/", 1)[1]
            wanted = [(publisher.create_topic, {"name": topic})]
            if name == config.EVENT_TOPIC:
                wanted.append((subscriber.create_subscription, {
                    "name": f"projects/{project}/subscriptions/{config.EVENT_SUBSCRIPTION}", "topic": topic,
                    "ack_deadline_seconds": config.EVENT_ACK_DEADLINE_SECONDS}))
            for create, request in wanted:
                try:
                    create(request=request, timeout=PUBSUB_TIMEOUT)
                    created.append(request["name"])
                except exceptions.AlreadyExists:
                    pass
    return created


@dataclass
class GcsEmulator(Emulator):
    """gcp-storage-emulator run by devstack.gcs_emulator, which adds bucket notifications (published to
    `pubsub_host`); objects kept on disk under <data_dir>/.cloudstorage/<bucket>/<object>. Each start
    (a running one included) creates again, on `pubsub_host`, the topics its saved notification configs
    publish to and the event-driven ingest's subscription, so a restart loses no upload."""

    pubsub_host: str = ""

    @property
    def objects_root(self) -> Path:
        return self.data_dir / ".cloudstorage"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not self.is_running():
            env = {"PYTHONPATH": str(REPO_ROOT)}
            if self.pubsub_host:
                env["PUBSUB_EMULATOR_HOST"] = self.pubsub_host
            self._spawn([sys.executable, "-m", "devstack.gcs_emulator", "-d", str(self.data_dir),
                         "--host", self.bind, "--port", str(self.port)], env=env)
        if self.pubsub_host:
            from devstack.gcs_emulator import configured_topics

            created = restore_notification_topics(self.pubsub_host, configured_topics(self.data_dir))
            if created:
                print("Pub/Sub: created again what the bucket notifications publish to:", ", ".join(created))


class BigQueryEmulator(Emulator):
    """bqemulator (DuckDB-backed), persistent under data_dir; REST on `port`, gRPC on `grpc_port`."""

    def __init__(self, name: str, data_dir: Path, port: int, grpc_port: int, gcs: GcsEmulator):
        super().__init__(name, data_dir, port)
        self.grpc_port = grpc_port
        self.gcs = gcs

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.is_running():
            return
        install_duckdb_spatial()
        self._spawn(
            [_bin("bqemulator"), "start", "--rest-host", self.bind, "--rest-port", str(self.port),
             "--grpc-host", self.bind, "--grpc-port", str(self.grpc_port), "--persistent",
             "--data-dir", str(self.data_dir), "--project", PROJECT_ID, "--log-level", "warning"],
            env={"BQEMU_GCS_LOCAL_ROOT": str(self.gcs.objects_root)},
        )
