"""The GCS (with its Pub/Sub notifications), BigQuery and Pub/Sub emulators as one service: docker-compose.yaml's
and the Astro override's `gcp-emulators` (image: docker/emulators/Dockerfile).

`python -m devstack.emulator_service --data-dir /data` starts the three as devstack does for `make run`
(devstack/emulators.py), at devstack's ports, listening on every interface of the container so the Airflow
containers reach them by the service's name; the GCS emulator publishes its notifications to the Pub/Sub
emulator beside it. It creates the course's bucket when missing (tasks keep their files there:
ZOOMCAMP_STORAGE_URL), then runs until SIGTERM or SIGINT (`docker compose stop`), or until one emulator
dies (the container then exits with 1 and compose's restart policy applies). `--check` exits 0 when all
three accept connections (the container's health check).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from pathlib import Path

from devstack.emulators import BigQueryEmulator, GcsEmulator, PubSubEmulator, ensure_bucket
from devstack.ports import PORTS, default_port
from include.zoomcamp import config

PORT_KEYS = ("pubsub_port", "gcs_port", "bq_port", "bq_grpc_port")


def ports() -> dict[str, int]:
    """devstack's ports (ZOOMCAMP_GCS_PORT and the others move them, as for `make run`)."""
    env_names = {key: env_name for key, env_name, _ in PORTS}
    return {key: int(os.environ.get(env_names[key]) or default_port(key)) for key in PORT_KEYS}


def emulators(data_dir: Path, bind: str = "0.0.0.0") -> list:
    found = ports()
    pubsub = PubSubEmulator("pubsub-emulator", data_dir / "pubsub", found["pubsub_port"])
    gcs = GcsEmulator("gcs-emulator", data_dir / "gcs", found["gcs_port"], pubsub.host)
    bigquery = BigQueryEmulator("bigquery-emulator", data_dir / "bigquery", found["bq_port"], found["bq_grpc_port"],
                                gcs)
    for emulator in (pubsub, gcs, bigquery):
        emulator.bind = bind
    return [pubsub, gcs, bigquery]


def healthy() -> bool:
    for port in ports().values():
        with socket.socket() as sock:
            sock.settimeout(2)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return False
    return True


def _stop(signum, frame):
    raise KeyboardInterrupt


def serve(data_dir: Path, bind: str) -> int:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    started = emulators(data_dir, bind)
    try:
        for emulator in started:
            emulator.start()
        gcs = started[1]
        ensure_bucket(gcs.url, config.GCP_DEFAULTS[config.GCP_BUCKET_NAME_VAR])
        print(f"GCS emulator :{gcs.port} (notifications to Pub/Sub :{started[0].port}), BigQuery emulator "
              f":{started[2].port} (gRPC :{started[2].grpc_port}), data in {data_dir}", flush=True)
        while all(emulator.is_running() for emulator in started):
            time.sleep(2)
        dead = [emulator.name for emulator in started if not emulator.is_running()]
        print(f"{', '.join(dead)} stopped; see the logs in {data_dir}", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for emulator in reversed(started):
            emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.emulator_service", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/data"))
    parser.add_argument("--bind", default="0.0.0.0", help="the address the emulators listen on")
    parser.add_argument("--check", action="store_true", help="exit 0 when the three emulators accept connections")
    args = parser.parse_args(argv)
    if args.check:
        return 0 if healthy() else 1
    return serve(args.data_dir, args.bind)


if __name__ == "__main__":
    sys.exit(main())
