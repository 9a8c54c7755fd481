"""`python -m devstack {services|stop|run}`: the embedded services behind `make run` and `make test`."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from devstack import airflow, bundles, gcp, private, procs, settings, workers
from devstack.emulators import BigQueryEmulator, GcsEmulator, PubSubEmulator, ensure_bucket
from devstack.ports import PORTS
from devstack.postgres import EmbeddedPostgres, free_port
from devstack.redis import RedisMissing, RedisServer
from include.zoomcamp import config

STATE_FILE = "services.json"
EXECUTORS = ("local", "celery")
DEFAULT_WORKERS = 2
# Where tasks on several workers keep the files others read (config.storage_url), in the course's bucket.
SHARED_FILES_PREFIX = "zoomcamp-files"


def _state_path(root: Path) -> Path:
    return root / STATE_FILE


def _ports(root: Path) -> dict[str, int]:
    """Ports of the services under `root`: reused while they run, else chosen afresh (preferred if free)."""
    state_path = _state_path(root)
    saved = json.loads(state_path.read_text()) if state_path.exists() else {}
    running = bool(saved) and EmbeddedPostgres(root / "postgres", saved["pg_port"]).is_running()
    ports: dict[str, int] = saved if running else {}
    for key, env_name, preferred in PORTS:
        if key in ports:  # a service added since these services were started gets a port too
            continue
        wanted = int(os.environ.get(env_name, preferred) or 0)
        port = free_port(wanted)
        while port in ports.values():
            port = free_port(0)
        ports[key] = port
    return ports


def _services(root: Path, ports: dict[str, int]):
    """In start order (stop_services stops them in reverse): GCS publishes to Pub/Sub, BigQuery reads GCS."""
    pubsub = PubSubEmulator("pubsub-emulator", root / "pubsub", ports["pubsub_port"])
    gcs = GcsEmulator("gcs-emulator", root / "gcs", ports["gcs_port"], pubsub.host)
    bigquery = BigQueryEmulator("bigquery-emulator", root / "bigquery", ports["bq_port"], ports["bq_grpc_port"], gcs)
    return EmbeddedPostgres(root / "postgres", ports["pg_port"]), pubsub, gcs, bigquery


def environment(root: Path, ports: dict[str, int], gcp_mode: str = config.GCP_EMULATORS) -> dict[str, str]:
    """The environment Airflow needs for the services under `root` on `ports` (started or not)."""
    postgres, pubsub, gcs, bigquery = _services(root, ports)
    metadata_uri = postgres.metadata_uri("postgresql+psycopg")
    if gcp_mode == config.GCP_REAL:
        return settings.airflow_environment(root, ports, metadata_uri, gcp_mode=gcp_mode)
    return settings.airflow_environment(root, ports, metadata_uri, gcs.url, bigquery.url, pubsub.host)


@contextmanager
def starting_services(root: Path, gcp_mode: str = config.GCP_EMULATORS, ports: dict[str, int] | None = None):
    """Start (or reuse) the services under `root` (on `ports` when given); yields the environment Airflow needs
    once PostgreSQL is ready, while the emulators are still starting: what needs only PostgreSQL (the metadata
    set-up) runs in the block, and the emulators are ready when it ends. Real GCP mode: PostgreSQL only, and
    emulators an earlier start left running are stopped (their data stays on disk)."""
    private.private_dir(root)
    ports = ports or _ports(root)
    postgres, pubsub, gcs, bigquery = _services(root, ports)
    _state_path(root).write_text(json.dumps(ports))
    if gcp_mode == config.GCP_REAL:
        postgres.start()
        for emulator in (bigquery, gcs, pubsub):
            emulator.stop()
        yield environment(root, ports, gcp_mode)
        return
    # Each start mostly waits for its process to listen: BigQuery, and Pub/Sub then GCS (whose start creates
    # topics on Pub/Sub), start beside PostgreSQL and beside the block.
    with ThreadPoolExecutor(max_workers=2) as pool:
        emulators = [pool.submit(bigquery.start), pool.submit(lambda: (pubsub.start(), gcs.start()))]
        postgres.start()
        yield environment(root, ports, gcp_mode)
    for started in emulators:
        started.result()  # raises an emulator's failure


def start_services(root: Path, gcp_mode: str = config.GCP_EMULATORS, ports: dict[str, int] | None = None
                   ) -> dict[str, str]:
    """Start (or reuse) the services under `root`, all of them ready; returns the environment Airflow needs."""
    with starting_services(root, gcp_mode, ports) as env:
        return env


def gcp_settings(mode_argument: str | None) -> gcp.GcpSettings:
    """The GCP mode for this start (`GCP=<mode>`, remembered, or zoomcamp.env's); exits naming the problem
    of an unusable settings file before anything starts."""
    try:
        return gcp.load(mode_argument)
    except gcp.SettingsError as exc:
        sys.exit(f"GCP settings: {exc}")


def prepare_gcp(env: dict[str, str], gcp_config: gcp.GcpSettings, removed: list[str]) -> None:
    """Real mode: the keyless connection if none exists, the course's values into `env`, and what was found
    printed (credentials' source and identity, never the key; a warning when none are usable)."""
    if not gcp_config.real:
        print(gcp.EMULATOR_MODE_LINE, flush=True)
        if removed:
            print(gcp.ignored_line(removed), flush=True)
        return
    found = gcp.prepare_connection(env)
    values = gcp.resolve_values(gcp_config, found.get("project", ""))
    env.update(gcp.real_environment(values))
    for line in gcp.real_mode_report(gcp_config, values, found, removed):
        print(line, file=sys.stderr if line.startswith("WARNING") else sys.stdout, flush=True)


def services_line(env: dict[str, str]) -> str:
    postgres = f"PostgreSQL 18 (ny_taxi, user root/root) on 127.0.0.1:{env['ZOOMCAMP_PG_PORT']}"
    if env.get(config.GCP_MODE_ENV) == config.GCP_REAL:
        return f"{postgres}; no emulators (real GCP)"
    return (f"{postgres}; GCS emulator {env['STORAGE_EMULATOR_HOST']}; "
            f"BigQuery emulator {env['BIGQUERY_EMULATOR_HOST']}; Pub/Sub emulator {env['PUBSUB_EMULATOR_HOST']}")


def git_bundle_environment() -> dict[str, str]:
    """The Git DAG bundles the ZOOMCAMP_GIT_* settings ask for (`make run-git`), checked before
    anything starts: exits naming the setting's problem when they are unusable."""
    try:
        return bundles.environment(os.environ)
    except bundles.GitBundleConfigError as exc:
        sys.exit(f"Git-synced DAGs: {exc}")


def stop_services(root: Path) -> None:
    state_path = _state_path(root)
    if not state_path.exists():
        return
    ports = json.loads(state_path.read_text())
    if "pubsub_port" not in ports:  # started before the Pub/Sub emulator existed
        ports["pubsub_port"] = 0
    redis(root, ports).stop()
    for service in reversed(_services(root, ports)):
        service.stop()


def redis(root: Path, ports: dict[str, int]) -> RedisServer:
    return RedisServer("redis", root / "redis", ports.get("redis_port", 0))


def celery_environment(root: Path, env: dict[str, str], worker_count: int) -> dict[str, str]:
    """Start Redis and return what switches Airflow to the CeleryExecutor with `worker_count` workers. The files
    tasks keep for others go to the course's bucket (on the emulator: created here when missing)."""
    broker = redis(root, json.loads(_state_path(root).read_text()))
    broker.start()
    bucket = env.get(f"AIRFLOW_VAR_{config.GCP_BUCKET_NAME_VAR}") or config.GCP_DEFAULTS[config.GCP_BUCKET_NAME_VAR]
    if env.get("STORAGE_EMULATOR_HOST"):
        ensure_bucket(env["STORAGE_EMULATOR_HOST"], bucket)
    return settings.celery_environment(broker.url, env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], worker_count,
                                       f"gs://{bucket}/{SHARED_FILES_PREFIX}")


def stop_all(root: Path) -> None:
    """`make stop`: a `make run` still serving `root`, what an earlier one left (its recorded
    Airflow session), then the services."""
    if not procs.stop_launcher(root):
        print(f"`make run` (pid {procs.live_launcher(root)}) did not stop within 60 s; stopping its processes")
    stop_leftovers(root)
    stop_services(root)


def stop_leftovers(root: Path) -> None:
    stopped = procs.stop_leftovers(root)
    if stopped:
        print(f"Stopped {len(stopped)} Airflow processes an earlier `make run` left running: pids {sorted(stopped)}")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_airflow(root: Path, gcp_config: gcp.GcpSettings | None = None, executor: str = "local",
                worker_count: int = DEFAULT_WORKERS) -> int:
    # Ctrl-C, `kill` and a closed terminal (SIGHUP) stop Airflow and then the services (a parent
    # shell may have set SIGINT to be ignored, e.g. for background jobs).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    git_env = git_bundle_environment()  # unusable settings stop here, before anything starts
    gcp_config = gcp_config or gcp.GcpSettings()
    if not procs.lock_run(root):
        other = procs.live_launcher(root)
        print(f"`make run` is already running for {root} (pid {other or '?'}): use that one, or stop it with "
              f"Ctrl-C in its terminal or `make stop`.", file=sys.stderr)
        return 1
    stop_leftovers(root)  # Airflow processes of an earlier run killed hard (SIGKILL, closed terminal)
    procs.record_launcher(root)
    # Airflow's processes inherit this environment: nothing of the other mode's
    removed = gcp.clean_inherited(os.environ, gcp_config.mode)
    proc = None
    try:
        with starting_services(root, gcp_config.mode) as services_env:
            env = {**services_env, **git_env}
            settings.write_env_file(env)
            print(services_line(env))
            if git_env:
                print("DAG bundles:", bundles.describe(git_env))
            print(f"Airflow UI: {env['AIRFLOW__API__BASE_URL']}  (user admin; the password is printed below by "
                  f"the api-server and kept in {env['AIRFLOW_HOME']}/{settings.PASSWORDS_FILE})")
            print("Migrating Airflow's metadata database and creating the pools...", flush=True)
            airflow.prepare_metadata(env)
        prepare_gcp(env, gcp_config, removed)
        if executor == "celery":
            env.update(celery_environment(root, env, worker_count))
            print(workers.describe({**os.environ, **env}), flush=True)
        settings.write_env_file(env)
        proc = airflow.start_standalone(env)
        procs.record_airflow(root, proc.pid)
        return proc.wait()
    except RedisMissing as exc:
        print(exc, file=sys.stderr)
        return 1
    except workers.IsolationUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130 if proc is None else airflow.stop(proc)
    finally:
        if proc is not None:
            airflow.stop(proc)
            procs.stop_leftovers(root)  # a task's own process group outliving the standalone
        procs.forget(root)
        stop_services(root)
        print("Stopped Airflow and the embedded services; data kept in", root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["services", "stop", "run"])
    parser.add_argument("--gcp", choices=config.GCP_MODES, default=None,
                        help="emulators (default) or real: your own GCP project; remembered in zoomcamp.env")
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="run: local (LocalExecutor, default) or celery (Redis and Celery workers)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"run --executor celery: how many workers (default {DEFAULT_WORKERS})")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    root = settings.data_dir()
    if args.command == "services":
        git_env = git_bundle_environment()  # bad Git settings stop here, before anything starts
        gcp_config = gcp_settings(args.gcp)
        if procs.live_launcher(root) is None:  # never the processes of a `make run` still serving root
            stop_leftovers(root)
        removed = gcp.clean_inherited(os.environ, gcp_config.mode)
        with starting_services(root, gcp_config.mode) as services_env:
            env = {**services_env, **git_env}
            airflow.prepare_metadata(env)
        prepare_gcp(env, gcp_config, removed)
        settings.write_env_file(env)
        print(f"Services up: {services_line(env)}; wrote {settings.ENV_FILE}")
        return 0
    if args.command == "stop":
        stop_all(root)
        return 0
    return run_airflow(root, gcp_settings(args.gcp), args.executor, args.workers)


if __name__ == "__main__":
    sys.exit(main())
