"""A Celery worker's view of the disk (devstack/workers.py), through bubblewrap for real: its own folder and
Airflow's home of the data dir, nothing of another worker's, an empty /tmp, and the project and Python
wherever they live, /tmp included (a clone under `mktemp -d`)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from devstack import workers

pytestmark = pytest.mark.sandbox


def test_a_worker_sees_its_folder_airflow_home_and_the_project_under_tmp_but_not_the_other_worker(
        tmp_path, monkeypatch):
    assert tmp_path.is_relative_to("/tmp")  # the case a private /tmp would hide
    project, root = tmp_path / "project", tmp_path / "data"
    (project / "dags").mkdir(parents=True)
    (project / "dags" / "a_dag.py").write_text("")
    monkeypatch.setattr(workers, "PROJECT_ROOT", project)
    first, second = workers.Worker(1, root), workers.Worker(2, root)
    airflow_home = root / "airflow"
    for folder in (airflow_home, first.home, second.home):
        folder.mkdir(parents=True)
    (second.home / "secret.txt").write_text("worker-2's")
    (tmp_path / "elsewhere.txt").write_text("")
    seen = [project / "dags" / "a_dag.py", airflow_home, first.home, second.home / "secret.txt",
            tmp_path / "elsewhere.txt", sys.executable]
    probe = "import os, sys; print([os.path.exists(p) for p in sys.argv[1:]])"
    result = subprocess.run([*first.isolation(airflow_home), sys.executable, "-c", probe, *map(str, seen)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str([True, True, True, False, False, True])
