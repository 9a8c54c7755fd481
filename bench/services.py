"""What every benchmark shares: throw-away embedded services, settling between steps, the machine."""
from __future__ import annotations

import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from devstack.__main__ import PORTS, start_services, stop_services


@contextmanager
def bench_services() -> Iterator[tuple[Path, str, dict]]:
    """Start the embedded services in a temporary directory on free ports (a running `make run` is
    left alone); yield (root, ny_taxi URI, Airflow environment); stop and remove them afterwards."""
    root = Path(tempfile.mkdtemp(prefix="zoomcamp-bench-"))
    for _, env_name, _ in PORTS:
        os.environ[env_name] = "0"
    try:
        env = start_services(root)
        yield root, f"postgresql://root:root@127.0.0.1:{env['ZOOMCAMP_PG_PORT']}/ny_taxi", env
    finally:
        stop_services(root)
        shutil.rmtree(root, ignore_errors=True)


def settle(uri: str) -> None:
    """Write out what earlier steps left dirty, so no step pays for the one before it."""
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def machine_line() -> str:
    return f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def backend_cpu_seconds(conn) -> float:
    """CPU seconds the connection's Postgres backend has used (Linux: the server runs on this machine)."""
    fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
