"""Every DAG file imports cleanly, without network, database or devstack environment, and follows the
project's conventions: one parse of all files in a fresh process (tests/fixtures/parse_dags.py), then
the checks over what it found.

The DAG policy is Astro's example test's (`astro dev init`): every DAG tagged with approved tags, every
task retrying at least twice (tasks reach networks; failures a retry cannot fix fail at once instead).
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from include.zoomcamp import config
from include.zoomcamp.ai.copilot import validation
from tests.conftest import REPO_ROOT

DAG_FILES = sorted(p.name for p in (REPO_ROOT / "dags").glob("*.py"))
COURSE = {
    "01_hello_world", "02_python", "03_getting_started_data_pipeline", "04_postgres_taxi",
    "05_postgres_taxi_scheduled_green", "05_postgres_taxi_scheduled_yellow",
    "06_gcp_kv", "07_gcp_setup", "08_gcp_taxi", "09_gcp_taxi_scheduled_green", "09_gcp_taxi_scheduled_yellow",
    "10_chat_without_rag", "11_chat_with_rag", "ai_copilot", "event-file-ingest", "event-file-ingest-setup",
}
WALKTHROUGH = {
    "gcp-connection-test": "dev.testing", "critical_service_subflow": "dev.testing", "parent_service": "dev.testing",
    "python-data-processing": "dev.testing", "python-with-namespace-files": "dev.testing",
    "python-multistep": "dev.testing", "java-hello-world": "dev.testing",
    "java-with-namespace-files": "dev.testing", "java-maven-project": "dev.testing",
    "ecommerce_ingest_and_clean_with_errors": "gcp.ecommerce", "debug-and-demo": "gcp.ecommerce",
    "yellow_cab_sequential_ingest": "gcp.yellowcab", "yellow_cab_main": "gcp.yellowcab",
    "yellow_cab_subflow": "gcp.yellowcab", "yellow_cab_retry_main": "gcp.yellowcab",
    "yellow_cab_retry_subflow": "gcp.yellowcab", "event-file-ingest-reconcile": "gcp.yellowcab",
}
APPROVED_TAGS = {config.TAG, config.WALKTHROUGH_TAG, *config.WALKTHROUGH_NAMESPACES}
MIN_RETRIES = 2


def clean_environment(tmp_path) -> dict[str, str]:
    """No devstack variable, no Variable or Connection from the environment; a database that refuses."""
    return {"PYTHONPATH": str(REPO_ROOT), "AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg://u:p@127.0.0.1:9/x"}


@pytest.fixture(scope="module")
def parsed(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("parse")
    out = tmp / "dags.json"
    result = subprocess.run([sys.executable, "-m", "tests.fixtures.parse_dags", str(out)], cwd=REPO_ROOT,
                            capture_output=True, text=True, env=clean_environment(tmp), timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def test_every_dag_file_imports_without_errors_warnings_network_or_database(parsed):
    assert parsed["import_errors"] == {}
    assert parsed["warnings"] == []
    files_with_dags = {dag["file"] for dag in parsed["dags"].values()}
    assert files_with_dags == set(DAG_FILES), set(DAG_FILES) - files_with_dags
    assert set(parsed["dags"]) == COURSE | set(WALKTHROUGH) | {"walkthrough_setup"}


def test_every_dag_has_a_file_of_its_own_named_by_its_dag_id(parsed):
    assert {dag_id: dag["file"] for dag_id, dag in parsed["dags"].items() if dag["file"] != f"{dag_id}.py"} == {}


def test_every_dag_is_tagged_with_approved_tags_and_documented(parsed):
    for dag_id, dag in parsed["dags"].items():
        assert dag["doc_md"].strip(), dag_id
        assert dag["tags"] and not set(dag["tags"]) - APPROVED_TAGS, (dag_id, dag["tags"])
    for dag_id in COURSE:
        assert config.TAG in parsed["dags"][dag_id]["tags"], dag_id
    for dag_id, namespace in WALKTHROUGH.items():
        assert set(parsed["dags"][dag_id]["tags"]) == {config.WALKTHROUGH_TAG, namespace}, dag_id
    assert parsed["dags"]["walkthrough_setup"]["tags"] == [config.WALKTHROUGH_TAG]  # serves every namespace


def test_every_task_retries_at_least_twice(parsed):
    for dag_id, dag in parsed["dags"].items():
        assert dag["default_retries"] >= MIN_RETRIES, dag_id
        few = {task: n for task, n in dag["retries"].items() if n < MIN_RETRIES}
        assert not few, f"{dag_id}: tasks with fewer than {MIN_RETRIES} retries: {few}"


def test_subflow_parents_check_their_child_less_often_than_a_worker_reports_its_deferral(dagbag):
    """Sooner, a resumed parent can meet Airflow 3.3's stale-report race (include/zoomcamp/operators.py)."""
    from airflow.sdk.configuration import conf

    heartbeat = conf.getint("workers", "min_heartbeat_interval")
    waits = {(dag_id, task.task_id): task.poke_interval
             for dag_id in ("parent_service", "yellow_cab_main", "yellow_cab_retry_main")
             for task in dagbag.get_dag(dag_id).tasks if getattr(task, "wait_for_completion", False)}
    assert len(waits) == 3 and all(seconds > heartbeat for seconds in waits.values()), (heartbeat, waits)
    assert heartbeat == 1 and set(waits.values()) == {2}  # devstack's settings: a check every 2 s


def test_no_dag_file_does_top_level_work():
    """The rule the AI copilot holds its drafts to (include/zoomcamp/ai/copilot/validation.py)."""
    found = {name: validation.top_level_work(ast.parse((REPO_ROOT / "dags" / name).read_text()))
             for name in DAG_FILES}
    assert {name: errors for name, errors in found.items() if errors} == {}


@pytest.mark.deploy
@pytest.mark.timeout(900)
def test_requirements_install_on_the_astro_runtime_and_its_integrity_test_passes_there(tmp_path):
    """A clean virtualenv with Astro Runtime 3.3's Airflow and bundled providers (tests/fixtures/astro_runtime.py),
    then requirements.txt alone: Airflow unchanged, a bundled provider changed only where requirements.txt pins
    it, `pip check` clean; `astro dev parse`'s test (.astro/test_dag_integrity_default.py) passes in that
    virtualenv with no devstack environment."""
    from tests.fixtures import astro_runtime

    venv = tmp_path / "runtime"
    before = astro_runtime.runtime_venv(venv)
    assert {name: before[name] for name in astro_runtime.AIRFLOW} == astro_runtime.AIRFLOW
    after = astro_runtime.install_requirements(venv)

    assert {name: after[name] for name in astro_runtime.AIRFLOW} == astro_runtime.AIRFLOW
    pins = astro_runtime.pinned_in_requirements()
    changed = {name: (before[name], after[name]) for name in astro_runtime.RUNTIME_PROVIDERS
               if before[name] != after[name]}
    assert all(pins.get(name) == new for name, (_, new) in changed.items()), changed
    check = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout

    astro_runtime.install(venv, "pytest==9.2.0")  # the test runner `astro dev pytest` finds in the image
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
                             "/dev/null", "--rootdir", str(REPO_ROOT), ".astro/test_dag_integrity_default.py"],
                            cwd=REPO_ROOT, capture_output=True, text=True, env=clean_environment(tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"{len(DAG_FILES) + 1} passed" in result.stdout


def test_taxi_params_have_forms_and_course_defaults(dagbag):
    params = dagbag.get_dag("04_postgres_taxi").params
    assert params["taxi"] == "yellow" and params["year"] == "2019" and params["month"] == "01"
    schema = {k: params.get_param(k).schema for k in ("taxi", "year", "month")}
    assert schema["taxi"]["enum"] == ["yellow", "green"]
    assert schema["month"]["enum"] == [f"{m:02d}" for m in range(1, 13)]
    assert schema["year"]["examples"] == ["2019", "2020", "2021"] and "enum" not in schema["year"]


def test_every_load_into_yellow_cab_raw_data_takes_the_one_pool(dagbag):
    """The yellow-cab DAGs load the same files into one table: their loads take turns (exactly once)."""
    loaders = {"yellow_cab_sequential_ingest": "load_file", "yellow_cab_main": "load_file",
               "event-file-ingest": "load_object", "event-file-ingest-reconcile": "load_object"}
    for dag_id, task_id in loaders.items():
        assert dagbag.get_dag(dag_id).get_task(task_id).pool == config.YELLOW_CAB_RAW_LOAD_POOL, dag_id
    assert config.YELLOW_CAB_RAW_LOAD_SLOTS == 1


def test_hello_world_concurrency_and_paused_schedule(dagbag):
    dag = dagbag.get_dag("01_hello_world")
    assert dag.max_active_runs == 2
    assert dag.is_paused_upon_creation is True
    assert dag.params["name"] == "Will"
    assert {t.level for t in dag.tasks if type(t).__name__ == "LogOperator"} == {"ERROR"}
