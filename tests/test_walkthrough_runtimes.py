"""Walkthrough 2_1: Python and Java code run from DAGs, with project files under include/.

Every DAG runs for real (dag.test()). CSVs are read back through ObjectStoragePath from the XCom
their task returned and checked against values computed here independently (DuckDB, plain Python
over the project files). The Java DAGs run with the local JDK and Maven (offline, against Debian's
Maven repository); the Docker runner cannot run here (no engine): its selection and the container
it would start are checked, and both runners' missing-tool errors are provoked.
"""
from __future__ import annotations

import csv
import io

import duckdb
import pytest

from include.zoomcamp.walkthrough import runtimes
from tests.conftest import run_dag


def _ti(run, task_id):
    return next(ti for ti in run.get_task_instances() if ti.task_id == task_id)


def _xcom(run, task_id):
    """A task's return value as the next task receives it (an ObjectStoragePath comes back as one)."""
    from airflow.sdk.serde import deserialize

    return deserialize(_ti(run, task_id).xcom_pull(task_ids=task_id))


@pytest.fixture
def storage(tmp_path, monkeypatch):
    base = (tmp_path / "storage").as_uri()
    monkeypatch.setenv("AIRFLOW_VAR_WALKTHROUGH_STORAGE_BASE", base)
    return base


def expected_sample_data() -> list[tuple]:
    prices = {"Widget": 9.99, "Gadget": 24.5, "Gizmo": 3.75}
    rows = []
    for day in range(1, 15):
        for i, (product, price) in enumerate(prices.items()):
            units = (day * 3 + i * 5) % 17 + 1
            rows.append((f"2024-01-{day:02d}", product, units, price, round(units * price, 2)))
    return rows


@pytest.mark.virtualenv
def test_python_data_processing_saves_the_sample_data_set(dagbag, storage):
    run = run_dag(dagbag.get_dag("python-data-processing"))
    assert run.state == "success"
    path = _xcom(run, "save_csv")
    assert str(path).startswith(storage + "/python-data-processing/") and path.name == "sample_data.csv"
    reader = csv.DictReader(io.StringIO(path.read_text()))
    assert reader.fieldnames == ["date", "product", "units", "unit_price", "revenue"]
    assert [(r["date"], r["product"], int(r["units"]), float(r["unit_price"]), float(r["revenue"]))
            for r in reader] == expected_sample_data()


def test_python_with_namespace_files_runs_the_project_script(dagbag, storage):
    run = run_dag(dagbag.get_dag("python-with-namespace-files"))
    assert run.state == "success"
    path = _xcom(run, "process_sales_data")
    assert str(path).startswith(storage + "/python-with-namespace-files/") and path.name == "sales_summary.csv"
    with duckdb.connect() as con:
        expected = con.execute(
            "SELECT region, count(*) AS orders, sum(quantity) AS units, sum(quantity * unit_price) AS revenue "
            "FROM read_csv(?, header = true) GROUP BY region ORDER BY revenue DESC, region",
            [str(runtimes.SALES_CSV)]).fetchall()
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [(r["region"], int(r["orders"]), int(r["units"]), r["revenue"]) for r in rows] == [
        (region, orders, units, f"{revenue:.2f}") for region, orders, units, revenue in expected]


def test_python_multistep_hands_the_file_over_through_object_storage(dagbag, storage):
    run = run_dag(dagbag.get_dag("python-multistep"))
    assert run.state == "success"
    path = _xcom(run, "write_orders")
    assert str(path).startswith(storage + "/python-multistep/") and path.name == "orders.csv"
    with duckdb.connect() as con:
        con.execute("CREATE TABLE o AS SELECT * FROM read_csv(?, header = true)", [path.path])
        per_product = con.execute("SELECT product, count(*), sum(quantity), round(sum(quantity * unit_price), 2) "
                                  "FROM o GROUP BY product").fetchall()
        total, count = con.execute("SELECT round(sum(quantity * unit_price), 2), count(*) FROM o").fetchone()
    assert _xcom(run, "read_orders") == {
        "orders": count, "total_revenue": total,
        "products": {p: {"orders": n, "units": u, "revenue": r} for p, n, u, r in per_product}}


def test_python_multistep_on_gcs(services, dagbag, monkeypatch):
    """The same DAG with a gs:// base: the file lands in the bucket (the GCS emulator, reached like
    GCP through google_cloud_default) and step 2 reads it from there."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    from include.zoomcamp import config

    bucket = config.GCP_DEFAULTS[config.GCP_BUCKET_NAME_VAR]
    client = gcs.Client(project=config.GCP_DEFAULTS[config.GCP_PROJECT_ID_VAR], credentials=AnonymousCredentials())
    if client.lookup_bucket(bucket) is None:
        client.create_bucket(bucket)
    monkeypatch.setenv("AIRFLOW_VAR_WALKTHROUGH_STORAGE_BASE", f"gs://{bucket}/walkthrough-test")
    run = run_dag(dagbag.get_dag("python-multistep"))
    assert run.state == "success"
    path = _xcom(run, "write_orders")
    assert path.protocol == "gs" and path.conn_id == "google_cloud_default"
    blob_name = path.path.removeprefix(f"{bucket}/")
    assert blob_name.startswith("walkthrough-test/python-multistep/") and blob_name.endswith("/orders.csv")
    rows = list(csv.DictReader(io.StringIO(client.bucket(bucket).blob(blob_name).download_as_text())))
    summary = _xcom(run, "read_orders")
    assert summary["orders"] == len(rows) == 40
    assert summary["total_revenue"] == round(sum(int(r["quantity"]) * float(r["unit_price"]) for r in rows), 2)


def test_storage_base_must_be_a_url():
    from include.zoomcamp.storage import StorageLocationError

    with pytest.raises(StorageLocationError, match="walkthrough_storage_base = '/tmp/x' is not a URL"):
        runtimes.storage_path("/tmp/x", "d", "r", "f.csv")


def test_storage_base_on_gcp_reads_through_the_gcp_connection():
    path = runtimes.storage_path("gs://bucket/prefix/", "python-multistep", "manual__2024-01-01T00:00:00+00:00",
                                 "o.csv")
    assert str(path) == ("gs://google_cloud_default@bucket/prefix/python-multistep/"
                         "manual__2024-01-01T00_00_00_00_00/o.csv")


def test_a_bucket_location_is_shown_as_its_url_without_the_connection_id():
    from include.zoomcamp import storage

    path = runtimes.storage_path("gs://bucket/prefix", "d", "r", "o.csv")
    assert storage.shown(path) == "gs://bucket/prefix/d/r/o.csv"


# --- Java ---------------------------------------------------------------------------------------

def expected_total_revenue() -> str:
    from decimal import Decimal

    with open(runtimes.SALES_CSV) as f:
        return str(sum(int(r["quantity"]) * Decimal(r["unit_price"]) for r in csv.DictReader(f)))


def expected_total_orders(days: int = 28) -> int:
    return sum((day * 7) % 11 + 3 for day in range(1, days + 1))


JAVA_RUNS = {
    "java-hello-world": ("compile_and_run", lambda: "Hello, World from Java!"),
    "java-with-namespace-files": ("run_data_processor", lambda: f"TOTAL_REVENUE={expected_total_revenue()}"),
    "java-maven-project": ("build_and_run", lambda: f"TOTAL_ORDERS={expected_total_orders()}"),
}


def java_dag(monkeypatch, runner: str, dag_id: str):
    """A Java DAG as parsed with ZOOMCAMP_JAVA_RUNNER=`runner` (the choice is made at parse time, so
    these tests make it themselves: a Docker socket on the machine, as on GitHub's runners, changes nothing)."""
    from tests.conftest import fresh_dag

    monkeypatch.setenv("ZOOMCAMP_JAVA_RUNNER", runner)
    return fresh_dag(dag_id)


@pytest.mark.jdk
@pytest.mark.parametrize("dag_id", JAVA_RUNS)
def test_java_dag_runs_with_the_local_jdk(monkeypatch, dag_id):
    from airflow.providers.standard.operators.bash import BashOperator

    task_id, expected = JAVA_RUNS[dag_id]
    dag = java_dag(monkeypatch, "local", dag_id)
    assert isinstance(dag.get_task(task_id), BashOperator)
    run = run_dag(dag)
    assert run.state == "success"
    assert _xcom(run, task_id) == expected()


@pytest.fixture
def path_without_java(tmp_path, monkeypatch):
    """A PATH with bash but no java, javac or mvn: a worker without a JDK."""
    import shutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "bash").symlink_to(shutil.which("bash"))
    monkeypatch.setenv("PATH", str(bin_dir))


def test_java_without_a_jdk_fails_at_once_saying_what_to_install(monkeypatch, path_without_java):
    from airflow.sdk import RetryAction

    from include.zoomcamp.walkthrough.java_runner import RunnerMissing

    hello_world = java_dag(monkeypatch, "local", "java-hello-world")
    task = hello_world.get_task("compile_and_run")
    with pytest.raises(RunnerMissing, match=r"javac, java not found on PATH: install a JDK 17 "
                                            r"\(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless") as missing:
        task._pre_execute_hook({})
    decision = task.retry_policy.evaluate(missing.value, try_number=1, max_tries=task.retries + 1)
    assert decision.action == RetryAction.FAIL  # the DAG's retry policy fails it on its first try
    maven = java_dag(monkeypatch, "local", "java-maven-project").get_task("build_and_run")
    with pytest.raises(RunnerMissing, match=r"mvn, java not found on PATH: install .*Maven 3.8\+"):
        maven._pre_execute_hook({})

    run = run_dag(hello_world)
    ti = _ti(run, "compile_and_run")
    assert (run.state, ti.state, ti.try_number) == ("failed", "failed", 1)  # failed, not up for retry


def _program_output(script: str, env: dict) -> list[str]:
    import os
    import subprocess

    done = subprocess.run(["bash", "-c", script], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("setting, docker_host, socket_exists, chosen", [
    ("docker", "", False, "docker"),
    ("local", "tcp://docker:2375", True, "local"),
    ("auto", "tcp://docker:2375", False, "docker"),
    ("auto", "", True, "docker"),
    ("auto", "", False, "local"),
    ("", "", False, "local"),
])
def test_runner_is_chosen_by_setting_then_by_a_docker_engine(monkeypatch, tmp_path, setting, docker_host,
                                                            socket_exists, chosen):
    from include.zoomcamp.walkthrough import java_runner

    socket = tmp_path / "docker.sock"
    if socket_exists:
        socket.touch()
    monkeypatch.setattr(java_runner, "DOCKER_SOCKET", socket)
    monkeypatch.setenv("ZOOMCAMP_JAVA_RUNNER", setting)
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    assert java_runner.runner() == chosen


def test_unknown_runner_setting_is_refused(monkeypatch):
    from include.zoomcamp.walkthrough import java_runner

    monkeypatch.setenv("ZOOMCAMP_JAVA_RUNNER", "podman")
    with pytest.raises(ValueError, match="ZOOMCAMP_JAVA_RUNNER='podman': expected docker, local or auto"):
        java_runner.runner()


@pytest.mark.jdk
@pytest.mark.parametrize("dag_id", JAVA_RUNS)
def test_docker_runner_starts_the_program_in_its_image(monkeypatch, dag_id):
    """What the DockerOperator would run, run here by bash with the local JDK: the container's script
    unpacks the project files from its environment (no bind mount) and prints the same result.
    Only the image itself is not exercised: this machine has no Docker engine."""
    from airflow.providers.docker.operators.docker import DockerOperator

    from include.zoomcamp.walkthrough import java_runner

    monkeypatch.setenv("DOCKER_HOST", "tcp://docker-engine:2375")
    task_id, expected = JAVA_RUNS[dag_id]
    task = java_dag(monkeypatch, "docker", dag_id).get_task(task_id)
    assert isinstance(task, DockerOperator)
    maven = dag_id == "java-maven-project"
    assert task.image == ("maven:3.9-eclipse-temurin-17" if maven else "eclipse-temurin:17-jdk")
    assert task.docker_url == "tcp://docker-engine:2375" and not task.mounts
    assert task.command[:2] == ["bash", "-c"]
    # The Maven image would download from Maven Central; here the mirror stands in for it.
    env = {**task.environment, java_runner.MAVEN_MIRROR_ENV: java_runner.maven_mirror()}
    assert _program_output(task.command[2], env)[-1] == expected()


def test_docker_runner_without_an_engine_fails_at_once_saying_what_to_do(tmp_path):
    from include.zoomcamp.walkthrough import java_runner

    check = java_runner.DockerCheck(f"unix://{tmp_path}/docker.sock")
    with pytest.raises(java_runner.RunnerMissing,
                       match=r"No Docker engine answers at unix://.*docker.sock .*start Docker"):
        check({})
