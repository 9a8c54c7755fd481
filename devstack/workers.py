"""CeleryExecutor workers on one machine, each as if on a machine of its own (`make run EXECUTOR=celery WORKERS=2`).

Worker `worker-<n>` gets its own data dir (ZOOMCAMP_DATA_DIR) and temporary dir (TMPDIR) under
`<data dir>/workers/worker-<n>/`, and consumes the queue `default` (every task's, unless it names another)
and its own queue `worker-<n>`. With bubblewrap (`bwrap`) it also sees the machine as another worker would:
its own empty /tmp and, of the data dir, only Airflow's home (task logs, read by the api-server) and its own
folder, so a task that reads a file another task wrote on another worker's disk fails here as it would on
two machines. Without bubblewrap (or where it cannot create mount namespaces) the workers share the disk
and only their environment differs.

Tasks run `[celery] worker_concurrency` at once per worker (ZOOMCAMP_WORKER_CONCURRENCY, default 4). Task
logs go to the shared Airflow home; devstack.log_server serves them, so the workers start with
--skip-serve-logs.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack import private

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # dags/, include/: what every task imports

WORKERS_ENV = "ZOOMCAMP_CELERY_WORKERS"  # how many workers devstack.standalone starts (CeleryExecutor only)
ISOLATION_ENV = "ZOOMCAMP_WORKER_ISOLATION"  # bwrap | none | unset: bwrap when it works here
CONCURRENCY_ENV = "ZOOMCAMP_WORKER_CONCURRENCY"
DEFAULT_CONCURRENCY = 4
DEFAULT_QUEUE = "default"
WORKER_NAME_ENV = "ZOOMCAMP_WORKER"


class IsolationUnavailable(RuntimeError):
    """bubblewrap was asked for and cannot isolate the workers here; the message says why."""


def queue(number: int) -> str:
    return f"worker-{number}"


@dataclass(frozen=True)
class Worker:
    number: int
    root: Path  # the stack's data dir

    @property
    def name(self) -> str:
        return queue(self.number)

    @property
    def home(self) -> Path:
        return self.root / "workers" / self.name

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"

    def environment(self) -> dict[str, str]:
        return {"ZOOMCAMP_DATA_DIR": str(self.data_dir), "TMPDIR": str(self.tmp_dir), WORKER_NAME_ENV: self.name}

    def celery_command(self, airflow: list[str], concurrency: int) -> list[str]:
        return [*airflow, "celery", "worker", "--queues", f"{DEFAULT_QUEUE},{self.name}",
                "--celery-hostname", f"{self.name}@%h", "--concurrency", str(concurrency), "--skip-serve-logs"]

    def isolation(self, airflow_home: Path) -> list[str]:
        """bwrap's arguments: the real root, a private /tmp (the project and Python shown again where they live
        under /tmp), of the data dir only Airflow's home and this worker's folder; the worker dies with its
        launcher (devstack.standalone)."""
        args = ["bwrap", "--dev-bind", "/", "/", "--tmpfs", "/tmp"]
        for shown in under_tmp(PROJECT_ROOT, Path(sys.prefix), Path(sys.base_prefix)):
            args += ["--bind", str(shown), str(shown)]
        args += ["--tmpfs", str(self.root)]
        for keep in (airflow_home, self.home):
            args += ["--bind", str(keep), str(keep)]
        return [*args, "--die-with-parent", "--"]


def under_tmp(*paths: Path) -> list[Path]:
    """Those of `paths` (resolved, without repeats) that a private /tmp would hide."""
    found = []
    for path in (p.resolve() for p in paths):
        if path.is_relative_to("/tmp") and path not in found:
            found.append(path)
    return found


def bwrap_problem() -> str | None:
    """Why bubblewrap cannot isolate a worker here, or None when it can."""
    if not shutil.which("bwrap"):
        return "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)"
    probe = subprocess.run(["bwrap", "--dev-bind", "/", "/", "--tmpfs", "/tmp", "true"], capture_output=True,
                           text=True)
    if probe.returncode:
        return f"bwrap cannot create a mount namespace here: {probe.stderr.strip()[-300:]}"
    return None


def isolated(environ) -> bool:
    """Whether to isolate the workers' disks: asked (bwrap, failing when impossible), refused (none), or
    whenever bubblewrap works here."""
    wanted = environ.get(ISOLATION_ENV, "").strip()
    if wanted == "none":
        return False
    problem = bwrap_problem()
    if wanted == "bwrap" and problem:
        raise IsolationUnavailable(f"{ISOLATION_ENV}=bwrap: {problem}")
    return problem is None


def commands(environ, airflow: list[str]) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The Celery workers devstack.standalone starts: name -> (command, extra environment); `airflow`: the
    command that runs `airflow` (devstack.component.command())."""
    count = int(environ.get(WORKERS_ENV) or 0)
    if not count:
        return {}
    root = Path(environ["ZOOMCAMP_DATA_DIR"])
    airflow_home = Path(environ["AIRFLOW_HOME"])
    concurrency = int(environ.get(CONCURRENCY_ENV) or DEFAULT_CONCURRENCY)
    wrap = isolated(environ)
    private.private_dir(airflow_home)  # bound into each worker's view before any component has created it
    started = {}
    for number in range(1, count + 1):
        worker = Worker(number, root)
        for folder in (worker.home, worker.data_dir, worker.tmp_dir):
            private.private_dir(folder)
        command = worker.celery_command(airflow, concurrency)
        started[worker.name] = ((worker.isolation(airflow_home) if wrap else []) + command, worker.environment())
    return started


def describe(environ) -> str:
    count = int(environ.get(WORKERS_ENV) or 0)
    how = "each on its own disk view (bubblewrap)" if isolated(environ) else "sharing the disk (no bubblewrap)"
    return (f"CeleryExecutor: {count} worker(s) worker-1..worker-{count}, queues default + their own, "
            f"{environ.get(CONCURRENCY_ENV) or DEFAULT_CONCURRENCY} tasks at once each, {how}")
