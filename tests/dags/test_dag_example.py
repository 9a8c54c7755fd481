"""The DAG policy of Astro's example test (`astro dev init`), on Airflow 3.3 and the session's DagBag.

Every DAG file yields DAGs without import errors, every DAG has tags (the project's), and every task
retries at least twice: tasks reach networks (downloads, Docker Hub, GCS/BigQuery, the metadata
database), and failures a retry cannot fix raise AirflowFailException instead of retrying.
"""
from __future__ import annotations

import pytest

from include.zoomcamp import config
from tests.conftest import REPO_ROOT

APPROVED_TAGS = {config.TAG, config.WALKTHROUGH_TAG, config.YELLOW_CAB_TAG}
MIN_RETRIES = 2
# dag_id -> why its tasks must not retry. Empty: every DAG retries.
NO_RETRY_DAGS: dict[str, str] = {}

DAG_FILES = sorted(p.name for p in (REPO_ROOT / "dags").glob("*.py"))


def _dags_of(dagbag, dag_file):
    dags = [dag for dag in dagbag.dags.values() if dag.fileloc == str(REPO_ROOT / "dags" / dag_file)]
    assert dags, f"dags/{dag_file} defines no DAG"
    return dags


def test_no_import_errors(dagbag):
    assert not dagbag.import_errors, dagbag.import_errors


@pytest.mark.parametrize("dag_file", DAG_FILES)
def test_dag_tags(dagbag, dag_file):
    for dag in _dags_of(dagbag, dag_file):
        assert dag.tags, f"{dag.dag_id} in dags/{dag_file} has no tags"
        assert not set(dag.tags) - APPROVED_TAGS, f"{dag.dag_id}: tags {set(dag.tags) - APPROVED_TAGS} not approved"


@pytest.mark.parametrize("dag_file", DAG_FILES)
def test_dag_retries(dagbag, dag_file):
    for dag in _dags_of(dagbag, dag_file):
        if dag.dag_id in NO_RETRY_DAGS:
            continue
        assert dag.default_args.get("retries", 0) >= MIN_RETRIES, f"{dag.dag_id} must have default retries >= 2"
        few = {t.task_id: t.retries for t in dag.tasks if t.retries < MIN_RETRIES}
        assert not few, f"{dag.dag_id}: tasks with fewer than {MIN_RETRIES} retries: {few}"
