"""Flows 10 and 11 (dag.test) and debug-and-demo's failure explainer (a real Airflow), against the stand-in.

The stand-in is selected only through connection `gemini_default`'s host: AIRFLOW_CONN_GEMINI_DEFAULT for
the in-process dag.test() runs, the connection set through the REST API on the session's Airflow stack.
"""
from __future__ import annotations

import json
import os
import re

import pytest

from include.zoomcamp import config
from include.zoomcamp.ai import explainer
from include.zoomcamp.ai.prompts import QUESTION, RAG_SYSTEM_MESSAGE
from tests.conftest import run_dag
from tests.fixtures.gemini_standin import GeminiStandIn, connection_json
from tests.fixtures.taxi import FileServer

API_KEY = "gemini_standin-key-4f7c0a"  # must never show in a request body, a log or an XCom
PLUGIN_SENTENCE = "Plugin versioning lets every team pin the exact plugin versions their flows were tested with."

RELEASE_NOTES = f"""---
title: Kestra 1.1 release
---

# Kestra 1.1

Kestra 1.1 is here with many improvements for orchestration teams.

## Plugin Versioning

{PLUGIN_SENTENCE}

Several versions of one plugin can be installed side by side and upgraded when ready.

## No-Code Dashboards

Build charts of executions with a form instead of YAML, and share dashboards across namespaces.

## Unit Tests for Flows

Write test cases with fixtures and assertions, run them in CI before deploying a flow.

```yaml
id: test_hello
# a heading-like line in code stays in its chunk
```

## Human-in-the-Loop Approvals

Pause an execution until a reviewer approves it from the UI or an email link.
"""

OTHER_NOTES = """# Another release

## Faster Scheduler

The scheduler now starts executions in half the time.
"""


@pytest.fixture(scope="module")
def notes_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("release-notes")
    (root / "release-1-1.md").write_text(RELEASE_NOTES)
    (root / "other.md").write_text(OTHER_NOTES)
    with FileServer(root) as server:
        yield server.url


@pytest.fixture(scope="module", autouse=True)
def gemini_env(gemini_standin, notes_site):
    """The connection and the document's Variable for the in-process dag.test() runs."""
    values = {"AIRFLOW_CONN_GEMINI_DEFAULT": connection_json(gemini_standin, api_key=API_KEY),
              "AIRFLOW_VAR_RAG_DOCUMENT_URL": f"{notes_site}/release-1-1.md"}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    yield values
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module", autouse=True)
def rag_store_dropped_afterwards(pg_uri):
    yield
    import psycopg

    with psycopg.connect(pg_uri, autocommit=True) as con:
        con.execute(f"DROP TABLE IF EXISTS {config.RAG_TABLE}")


def _ti(run, task_id):
    return next(ti for ti in run.get_task_instances() if ti.task_id == task_id)


def _xcom(run, task_id, key="return_value"):
    return _ti(run, task_id).xcom_pull(task_ids=task_id, key=key)


def _stored_chunks(pg) -> list[tuple[str, str]]:
    """The RAG store as the database holds it (table rag_chunks of ny_taxi)."""
    return pg.execute(f"SELECT id, text FROM {config.RAG_TABLE} ORDER BY position").fetchall()


def test_10_asks_without_any_context(dagbag, gemini_standin):
    gemini_standin.reset()
    run = run_dag(dagbag.get_dag("10_chat_without_rag"), run_conf={"question": QUESTION})
    assert run.state == "success"
    assert _xcom(run, "chat_without_rag") == "Stand-in answer without context."
    (call,) = gemini_standin.requests  # one chat call, no embedding, no retrieval
    assert call.method == "generateContent" and call.model == config.GEMINI_CHAT_MODEL
    assert call.prompt_text == QUESTION and call.system_text == ""
    assert API_KEY not in str(call.body)


def test_11_sends_the_chunk_about_the_asked_feature(dagbag, gemini_standin, pg):
    gemini_standin.reset()
    question = "How does plugin versioning let a team pin plugin versions?"
    pg.execute(f"DROP TABLE IF EXISTS {config.RAG_TABLE}")  # every chunk is embedded, none found stored
    run = run_dag(dagbag.get_dag("11_chat_with_rag"), run_conf={"question": question, "top_k": 2, "drop": True})
    assert run.state == "success"

    stored = _stored_chunks(pg)
    # Independently of the chunker: the document's paragraphs all made it into the store.
    for paragraph in (PLUGIN_SENTENCE, "Pause an execution until a reviewer approves it"):
        assert sum(paragraph in text for _, text in stored) == 1
    plugin_id = next(cid for cid, text in stored if PLUGIN_SENTENCE in text)
    ingest = _xcom(run, "ingest_release_notes")
    assert ingest["chunks"] == ingest["embedded"] == len(stored)

    (chat,) = gemini_standin.calls("generateContent")
    assert PLUGIN_SENTENCE in chat.prompt_text and f"[chunk {plugin_id}]" in chat.prompt_text
    assert "Pause an execution until a reviewer" not in chat.prompt_text  # top_k=2 left it out
    assert chat.prompt_text.endswith(f"Question: {question}")
    assert chat.system_text == RAG_SYSTEM_MESSAGE
    answer = _xcom(run, "chat_with_rag")
    assert answer.startswith("Stand-in answer from chunks: " + plugin_id)
    assert plugin_id in _xcom(run, "retrieve_context", key="sources")
    # Embedded: every chunk once at ingest, then the question alone.
    embedded = [c.embedded_texts for c in gemini_standin.calls("batchEmbedContents")]
    assert embedded[-1] == [question] and sum(len(e) for e in embedded[:-1]) == len(stored)


def test_11_reingesting_an_unchanged_document_makes_no_embedding_calls(dagbag, gemini_standin, pg):
    first = run_dag(dagbag.get_dag("11_chat_with_rag"), run_conf={"question": QUESTION, "drop": True})
    assert first.state == "success"
    before = _stored_chunks(pg)
    gemini_standin.reset()
    # Every run names its params: in-process dag.test() runs were seen to keep an earlier run's conf.
    run = run_dag(dagbag.get_dag("11_chat_with_rag"), run_conf={"question": QUESTION, "drop": True})
    assert run.state == "success"
    assert _xcom(run, "ingest_release_notes")["embedded"] == 0
    assert [c.embedded_texts for c in gemini_standin.calls("batchEmbedContents")] == [[QUESTION]]
    assert _stored_chunks(pg) == before


def test_11_drop_replaces_an_earlier_ingest(dagbag, gemini_standin, notes_site, monkeypatch, pg):
    monkeypatch.setenv("AIRFLOW_VAR_RAG_DOCUMENT_URL", f"{notes_site}/other.md")
    run = run_dag(dagbag.get_dag("11_chat_with_rag"), run_conf={"question": "How fast is the scheduler?", "drop": True})
    assert run.state == "success"
    texts = [text for _, text in _stored_chunks(pg)]
    assert texts == ["The scheduler now starts executions in half the time."]


def test_10_without_a_key_fails_in_its_first_task(dagbag, gemini_standin, services, monkeypatch, capfd):
    """With the placeholder connection devstack puts in the metadata database (as `make run` does)."""
    from devstack.airflow import airflow_cli

    gemini_standin.reset()
    monkeypatch.delenv("AIRFLOW_CONN_GEMINI_DEFAULT")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    stored = airflow_cli(dict(os.environ), "connections", "get", config.GEMINI_CONN_ID, "-o", "json").stdout
    [connection] = json.loads(next(line for line in stored.splitlines() if line.startswith("[{")))
    assert connection["password"] == config.GEMINI_KEY_PLACEHOLDER
    run = run_dag(dagbag.get_dag("10_chat_without_rag"), run_conf={"question": QUESTION})
    assert run.state == "failed"
    ti = _ti(run, "chat_without_rag")
    assert ti.state == "failed" and ti.try_number == 1  # GeminiSetupError: failed on its first try
    assert gemini_standin.requests == []
    task_log = "".join(capfd.readouterr())  # dag.test() writes the task's log to this process's output
    assert "'gemini_default' has no API key (the password is the placeholder)" in task_log


def test_10_uses_gemini_api_key_over_the_placeholder(dagbag, gemini_standin, monkeypatch):
    """The connection as `make run` leaves it (the placeholder, here pointing at the stand-in) and the key in
    GEMINI_API_KEY: the key reaches Gemini, the placeholder never does (the stand-in refuses any other key)."""
    gemini_standin.reset()
    gemini_standin.accepted_key = "key-from-the-environment"
    placeholder = connection_json(gemini_standin, api_key=config.GEMINI_KEY_PLACEHOLDER)
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", placeholder)
    monkeypatch.setenv("GEMINI_API_KEY", "key-from-the-environment")
    run = run_dag(dagbag.get_dag("10_chat_without_rag"), run_conf={"question": QUESTION})
    assert run.state == "success"
    assert _xcom(run, "chat_without_rag") == "Stand-in answer without context."
    (call,) = gemini_standin.requests
    assert call.method == "generateContent"
    # a key in the connection comes first: with GEMINI_API_KEY still set, the connection's key is the one sent
    gemini_standin.reset()
    gemini_standin.accepted_key = API_KEY
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", connection_json(gemini_standin, api_key=API_KEY))
    run = run_dag(dagbag.get_dag("10_chat_without_rag"), run_conf={"question": QUESTION})
    assert run.state == "success"
    gemini_standin.reset()


# --- debug-and-demo on a real Airflow: the explainer writes its note after a real failure ---------------

DEMO = "debug-and-demo"


@pytest.fixture(scope="module")
def demo_standin():
    """The stack's own stand-in: debug-and-demo's scheduled runs call it whenever they fail, so the in-process
    tests above, which count their calls to `gemini_standin`, never see those."""
    server = GeminiStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def demo_stack(airflow_stack, demo_standin):
    """The stack as `make run` sets it up (the explainer writes notes with devstack's `airflow_api`
    connection), its `gemini_default` on the stand-in and debug-and-demo active for this module only."""
    stack = airflow_stack
    stack.wait_for_dag(DEMO)
    conn = json.loads(connection_json(demo_standin, api_key=API_KEY))
    with stack.connection(config.GEMINI_CONN_ID, {**conn, "extra": json.dumps(conn["extra"])}), stack.unpaused(DEMO):
        yield stack


def _gate(stack, run_id) -> dict:
    return stack.task_instances(DEMO, run_id)["gate"]


def _wait_for_note(stack, run_id, containing: str, timeout: float = 90) -> str:
    def note():
        text = _gate(stack, run_id).get("note") or ""
        return text if containing in text else None
    return stack.wait_until(note, timeout, f"a note with {containing!r} on the gate of {run_id}")


def test_explainer_notes_a_real_failure_of_debug_and_demo(demo_stack, demo_standin):
    stack = demo_stack
    run_id = stack.trigger(DEMO)
    assert stack.wait_for_run(DEMO, run_id, timeout=240)["state"] == "failed"
    note = _wait_for_note(stack, run_id, explainer.NOTE_TITLE)

    calls = [c for c in demo_standin.calls("generateContent") if run_id in c.prompt_text]
    assert len(calls) == 1
    prompt = calls[0].prompt_text
    assert "GateClosed" in prompt and "demo gate is closed on purpose" in prompt  # the exception
    assert "def gate(params=None)" in prompt  # the task's source
    tail = prompt.split("Last lines of the task's log:\n", 1)[1]  # the log's tail, read from the log file
    assert re.match(r"\[(debug|info|warning|error)\] ", tail), tail[:300]
    assert API_KEY not in prompt
    assert note == f"{explainer.NOTE_TITLE}: Stand-in answer without context.\n\n(model {config.GEMINI_CHAT_MODEL})"

    gate = _gate(stack, run_id)  # the failure is unchanged: failed, first try, no retry
    assert gate["state"] == "failed" and gate["try_number"] == 1
    tis = stack.task_instances(DEMO, run_id)
    assert tis["log_levels"]["state"] == "success" and tis["after_gate"]["state"] == "upstream_failed"
    log = stack.task_log(DEMO, run_id, "gate")
    assert "Stand-in answer without context." in log and API_KEY not in log
    levels = stack.task_log(DEMO, run_id, "log_levels")
    assert all(word in levels for word in ("INFO:", "WARNING:", "ERROR:"))


def test_explainer_with_gemini_unreachable_says_so(demo_stack, demo_standin):
    stack = demo_stack
    run_id = stack.trigger(DEMO)
    assert stack.wait_for_run(DEMO, run_id, timeout=240)["state"] == "failed"
    _wait_for_note(stack, run_id, explainer.NOTE_TITLE)
    demo_standin.stop()
    try:
        stack.api("POST", f"/api/v2/dags/{DEMO}/clearTaskInstances",
                  {"dag_run_id": run_id, "task_ids": ["gate"], "only_failed": True, "dry_run": False})
        stack.wait_until(lambda: (gate := _gate(stack, run_id))["try_number"] >= 2 and gate["state"] == "failed",
                         240, "the cleared gate failed again")
        note = _wait_for_note(stack, run_id, "Gemini was unreachable")
    finally:
        demo_standin.start()
    assert note.startswith(f"{explainer.NOTE_TITLE}: No explanation: Gemini was unreachable ({demo_standin.url}")
    assert _gate(stack, run_id)["state"] == "failed"


def test_an_open_gate_lets_the_run_pass_with_nothing_to_explain(demo_stack, demo_standin):
    """What a learner sees after opening the gate: the run succeeds, the gate has no note, Gemini is not asked."""
    stack = demo_stack
    demo_standin.reset()
    run_id = stack.trigger(DEMO, {"demo_gate_open": True})
    assert stack.wait_for_run(DEMO, run_id, timeout=240)["state"] == "success"
    tis = stack.task_instances(DEMO, run_id)
    assert {task: ti["state"] for task, ti in tis.items()} == {
        "log_levels": "success", "gate": "success", "after_gate": "success"}
    assert not tis["gate"].get("note")
    assert stack.xcom(DEMO, run_id, "after_gate") == "The demo run passed the gate"
    assert "The gate is open: the run goes on" in stack.task_log(DEMO, run_id, "gate")
    assert not [c for c in demo_standin.calls("generateContent") if run_id in c.prompt_text]
