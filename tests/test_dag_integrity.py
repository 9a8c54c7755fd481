"""Every DAG file imports cleanly, fast, without warnings, and follows the project's conventions."""
from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from tests.conftest import REPO_ROOT

EXPECTED = {
    "06_gcp_kv", "07_gcp_setup", "08_gcp_taxi", "09_gcp_taxi_scheduled_green", "09_gcp_taxi_scheduled_yellow",
    "01_hello_world", "02_python", "03_getting_started_data_pipeline", "04_postgres_taxi",
    "05_postgres_taxi_scheduled_green", "05_postgres_taxi_scheduled_yellow",
    "event-file-ingest", "event-file-ingest-setup",
    "10_chat_without_rag", "11_chat_with_rag", "ai_copilot",
}


def test_all_dag_files_import_without_errors_or_warnings():
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(str(REPO_ROOT / "dags"))
    assert bag.import_errors == {}
    assert EXPECTED <= set(bag.dag_ids)
    ours = [w for w in caught if "/dags/" in str(w.filename) or "/include/" in str(w.filename)]
    assert ours == [], [str(w.message) for w in ours]


def test_every_dag_is_tagged_and_documented(dagbag):
    for dag_id in EXPECTED:
        dag = dagbag.get_dag(dag_id)
        assert "zoomcamp" in dag.tags, dag_id
        assert dag.doc_md, dag_id


WALKTHROUGH = {
    "gcp-connection-test": "dev.testing", "critical_service_subflow": "dev.testing", "parent_service": "dev.testing",
    "python-data-processing": "dev.testing", "python-with-namespace-files": "dev.testing",
    "python-multistep": "dev.testing", "java-hello-world": "dev.testing",
    "java-with-namespace-files": "dev.testing", "java-maven-project": "dev.testing",
    "ecommerce_ingest_and_clean_with_errors": "gcp.ecommerce", "debug-and-demo": "gcp.ecommerce",
    "yellow_cab_sequential_ingest": "gcp.yellowcab", "yellow_cab_main": "gcp.yellowcab",
    "yellow_cab_subflow": "gcp.yellowcab", "yellow_cab_retry_main": "gcp.yellowcab",
    "yellow_cab_retry_subflow": "gcp.yellowcab",
}


def test_walkthrough_dags_are_tagged_with_their_kestra_namespace(dagbag):
    for dag_id, namespace in WALKTHROUGH.items():
        dag = dagbag.get_dag(dag_id)
        assert dag is not None, dag_id
        assert set(dag.tags) == {"walkthrough", namespace}, dag_id
        assert dag.doc_md, dag_id
    setup = dagbag.get_dag("walkthrough_setup")  # serves every namespace: the walkthrough tag only
    assert set(setup.tags) == {"walkthrough"} and setup.doc_md


def test_taxi_params_have_forms_and_course_defaults(dagbag):
    params = dagbag.get_dag("04_postgres_taxi").params
    assert params["taxi"] == "yellow" and params["year"] == "2019" and params["month"] == "01"
    schema = {k: params.get_param(k).schema for k in ("taxi", "year", "month")}
    assert schema["taxi"]["enum"] == ["yellow", "green"]
    assert schema["month"]["enum"] == [f"{m:02d}" for m in range(1, 13)]
    assert schema["year"]["examples"] == ["2019", "2020", "2021"] and "enum" not in schema["year"]


def test_hello_world_concurrency_and_paused_schedule(dagbag):
    dag = dagbag.get_dag("01_hello_world")
    assert dag.max_active_runs == 2
    assert dag.is_paused_upon_creation is True
    assert dag.params["name"] == "Will"
    assert {t.level for t in dag.tasks if type(t).__name__ == "LogOperator"} == {"ERROR"}


@pytest.mark.parametrize("dag_file", sorted(p.name for p in (REPO_ROOT / "dags").glob("*.py")))
def test_dag_file_parses_without_network_or_metadata_db(dag_file, tmp_path):
    """Parse each file in a fresh process where any socket use raises: no network or DB at parse."""
    script = (
        "import socket, runpy\n"
        "def refuse(*a, **k):\n"
        "    raise RuntimeError('network or database access at parse time')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from airflow.sdk import Connection, Variable\n"
        "Variable.get = staticmethod(refuse)\n"
        "Connection.get = staticmethod(refuse)\n"
        f"runpy.run_path({str(REPO_ROOT / 'dags' / dag_file)!r})\n"
    )
    env_python = sys.executable
    result = subprocess.run([env_python, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO_ROOT), "AIRFLOW_HOME": str(tmp_path),
                                 "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": "/usr/bin:/bin",
                                 # any metadata-database access would open a socket, which raises above
                                 "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg://u:p@127.0.0.1:9/x"})
    assert result.returncode == 0, result.stderr[-2000:]
