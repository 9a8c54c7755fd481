"""ai_copilot against the Gemini stand-in (selected by the connection's host), with real validation:
the DagBag import in the bubblewrap sandbox and ruff run for real on every draft."""
from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from include.zoomcamp import config
from include.zoomcamp.ai.copilot import context, drafting, validation
from tests.conftest import REPO_ROOT, run_dag
from tests.fixtures import copilot_drafts as drafts
from tests.fixtures.gemini_standin import connection_json

pytestmark = pytest.mark.sandbox

DAG_ID = "ai_copilot"
REQUEST = "Create an Airflow DAG that loads a taxi CSV file to BigQuery through GCS."


@pytest.fixture
def copilot(gemini_standin, monkeypatch, tmp_path):
    """The connection pointing at the stand-in, drafts into a fresh folder; yields that folder."""
    gemini_standin.reset()
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", connection_json(gemini_standin))
    monkeypatch.setenv("AIRFLOW_VAR_COPILOT_DRAFTS_DIR", str(tmp_path / "drafts"))
    return tmp_path / "drafts"


@pytest.fixture
def copilot_dag():
    """The DAG freshly parsed: a dag.test() run with a conf leaves it in the parsed DAG's params."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(REPO_ROOT / "dags" / "ai_copilot.py")).dags[DAG_ID]


def _dags_folder_state() -> dict:
    """The files under dags/, apart from bytecode caches: other test processes import the DAGs at the same time."""
    return {p.name: p.stat().st_mtime_ns for p in (REPO_ROOT / "dags").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture
def task_log(capsys, caplog):
    """What the task has logged so far, as dag.test() shows it (printed and through logging)."""

    def read() -> str:
        out, err = capsys.readouterr()
        return out + err + caplog.text

    return read


def _xcom(run, task_id="draft_dag"):
    return run.get_task_instance(task_id).xcom_pull(task_ids=task_id)


def test_context_lists_installed_operators_with_their_real_signatures():
    catalogue = context.operator_catalogue(drafting.EXERCISE_REQUEST)
    assert len(catalogue) <= context.MAX_CONTEXT_CHARS
    entries = re.findall(r"^from (\S+) import (\w+)\n\2(\(.*\))$", catalogue, re.MULTILINE)
    names = {name for _, name, _ in entries}
    assert {"GCSToBigQueryOperator", "LocalFilesystemToGCSOperator", "PythonOperator", "BashOperator"} <= names
    for module, name, signature in entries:  # each one importable here, with the parameters it really takes
        cls = getattr(importlib.import_module(module), name)
        expected = [p for p in inspect.signature(cls).parameters if p != "kwargs"][:5]
        assert all(re.search(rf"[(, ]\**{p}\b", signature) for p in expected), (name, expected, signature)
    gcs_to_bq = dict((n, s) for _, n, s in entries)["GCSToBigQueryOperator"]
    assert "destination_project_dataset_table" in gcs_to_bq and "source_format='CSV'" in gcs_to_bq
    # The HTTP provider is not installed: its transfer to GCS is declared by the Google provider, but not offered.
    assert importlib.util.find_spec("airflow.providers.http") is None
    assert "HttpToGCSOperator" not in catalogue


def test_draft_broken_once_is_fixed_in_round_two_and_written_outside_dags(copilot_dag, copilot, gemini_standin,
                                                                          task_log):
    gemini_standin.queue_replies(drafts.answer(drafts.BROKEN_IMPORT), drafts.answer(drafts.VALID))
    before = _dags_folder_state()
    run = run_dag(copilot_dag, run_conf={"request": REQUEST})
    assert run.state == "success"

    first, second = gemini_standin.calls("generateContent")
    assert REQUEST in first.prompt_text and "from airflow.providers.google.cloud.transfers.gcs_to_bigquery " \
        "import GCSToBigQueryOperator" in first.prompt_text
    assert (REPO_ROOT / "dags" / "07_gcp_setup.py").read_text() in first.prompt_text  # the example DAG
    assert "Your previous draft" not in first.prompt_text and first.system_text == drafting.SYSTEM
    assert "import LocalToGCSOperator" in second.prompt_text  # the rejected draft, with what was wrong
    assert "import error:" in second.prompt_text
    assert "cannot import name 'LocalToGCSOperator'" in second.prompt_text

    result = _xcom(run)
    assert result["rounds"] == 2 and result["dag_ids"] == ["taxi_csv_to_bigquery"]
    assert result["code"] == drafts.VALID
    assert result["import_checked"] is True and result["validation"] == "import-checked in the sandbox"
    written = list(copilot.iterdir())
    assert [p.name for p in written] == [result["path"].rsplit("/", 1)[1]]
    assert written[0].name.startswith("taxi_csv_to_bigquery-")
    text = written[0].read_text()
    assert text.endswith(drafts.VALID) and text.startswith("# Drafted by the ai_copilot DAG")
    assert "# Validation: import-checked in the sandbox.\n" in text
    assert _dags_folder_state() == before

    used = sum(len((c.system_text + " " + c.prompt_text).split()) for c in (first, second)) + sum(
        len(drafts.answer(code).split()) for code in (drafts.BROKEN_IMPORT, drafts.VALID))
    assert f"Gemini tokens used by the copilot: {used} in 2 call(s)" in task_log()


def test_a_draft_that_never_validates_fails_with_the_last_errors(copilot_dag, copilot, gemini_standin, task_log):
    gemini_standin.queue_replies(*(drafts.answer(code) for code in
                            (drafts.AIRFLOW_2_STYLE, drafts.TOP_LEVEL_WORK, drafts.OFF_POLICY)))
    before = _dags_folder_state()
    run = run_dag(copilot_dag)
    assert run.state == "failed"
    ti = run.get_task_instance("draft_dag")
    assert ti.state == "failed" and ti.try_number == 1  # no retry redoes the rounds
    calls = gemini_standin.calls("generateContent")
    assert len(calls) == 3
    assert drafting.EXERCISE_REQUEST in calls[0].prompt_text  # the param's default: the course's exercise
    assert all(code in calls[1].prompt_text for code in ("AIR002", "AIR311", "AIR312"))
    assert "top-level call `requests.get(...)`" in calls[2].prompt_text
    log = task_log()
    last_errors = log[log.index("no valid DAG after 3 rounds"):]
    assert "DAG taxi_csv_to_bigquery: tags ['taxi']" in last_errors
    assert "tasks retrying fewer than 2 times {'extract': 0}" in last_errors
    assert not copilot.exists() and _dags_folder_state() == before


def test_without_a_sandbox_the_draft_is_written_marked_not_import_checked(copilot_dag, copilot, gemini_standin,
                                                                         monkeypatch, task_log):
    monkeypatch.setenv(config.COPILOT_BWRAP_ENV, "bwrap-not-installed-here")
    gemini_standin.queue_replies(drafts.answer(drafts.VALID))
    run = run_dag(copilot_dag, run_conf={"request": REQUEST})
    assert run.state == "success"
    result = _xcom(run)
    assert result["rounds"] == 1 and result["dag_ids"] == ["taxi_csv_to_bigquery"]  # read from the code
    assert result["import_checked"] is False
    assert result["validation"].startswith("not import-checked (no sandbox to import it in: bubblewrap "
                                           "(`bwrap-not-installed-here`) is not installed")
    text = Path(result["path"]).read_text()
    assert text.startswith("# Drafted by the ai_copilot DAG") and text.endswith(drafts.VALID)
    assert "# Validation: not import-checked (no sandbox to import it in: " in text
    log = task_log()
    assert "The draft is NOT imported (no sandbox to import it in: bubblewrap" in log
    assert "valid draft (not import-checked" in log


def test_a_drafts_folder_inside_dags_is_refused_before_any_call(copilot_dag, copilot, gemini_standin,
                                                                monkeypatch, task_log):
    monkeypatch.setenv("AIRFLOW_VAR_COPILOT_DRAFTS_DIR", str(REPO_ROOT / "dags" / "drafts"))
    run = run_dag(copilot_dag)
    assert run.state == "failed"
    assert "is inside the DAGs folder" in task_log()
    assert gemini_standin.requests == [] and not (REPO_ROOT / "dags" / "drafts").exists()


def test_without_a_key_the_first_task_fails_naming_the_connection(copilot_dag, copilot, gemini_standin,
                                                                  monkeypatch, task_log):
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", connection_json(gemini_standin, api_key=""))
    run = run_dag(copilot_dag)
    assert run.state == "failed" and run.get_task_instance("draft_dag").try_number == 1
    assert "Gemini connection 'gemini_default' has no API key" in task_log()
    assert gemini_standin.requests == []


def test_the_top_level_rule_refuses_parse_time_work():
    code = '''import os
import pandas as pd
from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow.sdk import DAG, Variable, task

ROWS = pd.read_csv("taxi.csv")
BUCKET = Variable.get("bucket")
HOOK = GCSHook()
print("parsing")

def listing():
    return os.listdir("/")

FILES = listing()

with DAG(dag_id="x", schedule=None):
    @task
    def count():
        return len(pd.read_csv("taxi.csv"))
    count.override(task_id="count_rows")() >> count()
'''
    errors = validation.top_level_work(ast.parse(code))
    assert [int(e.split(":")[0].removeprefix("line ")) for e in errors] == [6, 7, 8, 9, 12]
    assert "pandas" in errors[0] and "Variable" in errors[1] and "hook" in errors[2] and "print" in errors[3]
