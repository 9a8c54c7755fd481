"""The emulators' image (docker/emulators/Dockerfile) without Docker: its files, laid out as its COPY lines lay
them, in a clean virtualenv holding only what its RUN line installs, run its CMD; Google's official clients
then use the three emulators as the Airflow containers would (GCS notifications into Pub/Sub included)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from devstack.ports import PORTS
from tests.conftest import REPO_ROOT
from tests.fixtures.astro_runtime import UV
from tests.fixtures.services import reserve_port

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(600)]
DOCKERFILE = REPO_ROOT / "docker" / "emulators" / "Dockerfile"
PORT_KEYS = ("pubsub_port", "gcs_port", "bq_port", "bq_grpc_port")

PROBE = r'''
import json, sys, time
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, pubsub_v1, storage

project, bucket_name = "zoomcamp-local", "zoomcamp-local-bucket"
publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
topic = publisher.topic_path(project, "image-probe")
publisher.create_topic(name=topic)
sub = subscriber.subscription_path(project, "image-probe-sub")
subscriber.create_subscription(name=sub, topic=topic)
bucket = storage.Client(project=project, credentials=AnonymousCredentials()).bucket(bucket_name)
notification = bucket.notification(topic_name="image-probe", payload_format="JSON_API_V1")
notification.create()
bucket.blob("landing/probe.csv").upload_from_string("a,b\n1,2\n")
response = subscriber.pull(subscription=sub, max_messages=1, timeout=30)
attributes = dict(response.received_messages[0].message.attributes)
rows = list(bigquery.Client(project=project, credentials=AnonymousCredentials()).query("SELECT 41 + 1 AS n").result())
print(json.dumps({"attributes": attributes, "answer": rows[0]["n"]}))
'''


def _image_files(root):
    """The files the Dockerfile's COPY lines put into its WORKDIR, copied under `root` as COPY would."""
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            *sources, target = line.split()[1:]
            for source in map(REPO_ROOT.joinpath, sources):
                if source.is_dir():
                    shutil.copytree(source, root / target, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    (root / target).mkdir(parents=True, exist_ok=True)
                    shutil.copy(source, root / target / source.name)


def test_the_emulators_image_serves_the_three_emulators_with_notifications(tmp_path):
    workdir, venv, data = tmp_path / "opt", tmp_path / "venv", tmp_path / "data"
    _image_files(workdir)
    assert (workdir / "devstack" / "emulator_service.py").exists()
    assert (workdir / "include" / "zoomcamp" / "config.py").exists()
    subprocess.run([str(UV), "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True)
    subprocess.run([str(UV), "pip", "install", "--python", str(venv / "bin" / "python"), "-r",
                    str(workdir / "requirements-emulators.txt"), "-c", str(workdir / "constraints.txt")],
                   check=True, capture_output=True)

    sockets = {key: reserve_port() for key in PORT_KEYS}
    ports = {key: sock.getsockname()[1] for key, sock in sockets.items()}
    for sock in sockets.values():
        sock.close()
    env_names = {key: env_name for key, env_name, _ in PORTS}
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(workdir), "HOME": str(tmp_path),
           **{env_names[key]: str(port) for key, port in ports.items()}}
    command = [str(venv / "bin" / "python"), "-m", "devstack.emulator_service", "--data-dir", str(data),
               "--bind", "127.0.0.1"]
    service = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        check = [*command[:3], "--check"]
        deadline = time.monotonic() + 180
        while subprocess.run(check, cwd=workdir, env=env).returncode != 0:
            assert service.poll() is None, service.stdout.read().decode()
            assert time.monotonic() < deadline, "the emulators did not become healthy"
            time.sleep(1)
        clients = {**os.environ, "STORAGE_EMULATOR_HOST": f"http://localhost:{ports['gcs_port']}",
                   "BIGQUERY_EMULATOR_HOST": f"http://localhost:{ports['bq_port']}",
                   "PUBSUB_EMULATOR_HOST": f"localhost:{ports['pubsub_port']}"}
        probe = subprocess.run([sys.executable, "-c", PROBE], env=clients, capture_output=True, text=True, timeout=120)
        assert probe.returncode == 0, probe.stderr[-3000:]
        found = json.loads(probe.stdout.strip().splitlines()[-1])
        assert found["answer"] == 42
        assert found["attributes"]["eventType"] == "OBJECT_FINALIZE"
        assert (found["attributes"]["bucketId"], found["attributes"]["objectId"]) == (
            "zoomcamp-local-bucket", "landing/probe.csv")
    finally:
        if service.poll() is None:
            os.killpg(service.pid, signal.SIGTERM)
        code = service.wait(timeout=60)
    assert code == 0
    assert subprocess.run(check, cwd=workdir, env=env).returncode == 1  # every emulator stopped with it
