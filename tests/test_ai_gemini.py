"""The Gemini client against the local stand-in, selected only through the connection's host."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from include.zoomcamp import config
from include.zoomcamp.ai import gemini
from include.zoomcamp.errors import PermanentError
from tests.conftest import REPO_ROOT
from tests.fixtures.gemini_standin import GeminiStandIn, connection_json

CONN_ENV = "AIRFLOW_CONN_GEMINI_DEFAULT"


@pytest.fixture
def gemini_conn(gemini_standin, monkeypatch):
    gemini_standin.reset()
    monkeypatch.setenv(CONN_ENV, connection_json(gemini_standin))
    return gemini_standin


@pytest.mark.parametrize("key", ["", config.GEMINI_KEY_PLACEHOLDER])
def test_missing_key_fails_naming_the_connection(gemini_standin, monkeypatch, key):
    gemini_standin.reset()
    monkeypatch.delenv(gemini.KEY_ENV, raising=False)
    monkeypatch.setenv(CONN_ENV, connection_json(gemini_standin, api_key=key))
    with pytest.raises(gemini.GeminiSetupError, match="gemini_default.*no API key") as err:
        gemini.generate("hello")
    assert "AIRFLOW_CONN_GEMINI_DEFAULT" in str(err.value) and "Admin > Connections" in str(err.value)
    assert gemini_standin.requests == []


@pytest.mark.parametrize("key", ["", config.GEMINI_KEY_PLACEHOLDER])
def test_gemini_api_key_stands_in_for_a_missing_key_and_never_beats_a_real_one(gemini_standin, monkeypatch, key):
    gemini_standin.reset()
    gemini_standin.accepted_key = "key-from-the-environment"
    monkeypatch.setenv(gemini.KEY_ENV, "key-from-the-environment")
    monkeypatch.setenv(CONN_ENV, connection_json(gemini_standin, api_key=key))
    assert gemini.generate("hello")[0] == "Stand-in answer without context."
    monkeypatch.setenv(CONN_ENV, connection_json(gemini_standin, api_key="key-in-the-connection"))
    assert gemini.gemini_settings().api_key == "key-in-the-connection"
    with pytest.raises(gemini.GeminiSetupError, match="rejected as invalid"):  # the stand-in accepts only the other
        gemini.generate("hello")
    gemini_standin.reset()


def test_undefined_connection_fails_naming_it():
    with pytest.raises(gemini.GeminiSetupError,
                       match="'gemini_elsewhere' is not defined.*AIRFLOW_CONN_GEMINI_ELSEWHERE"):
        gemini.gemini_settings("gemini_elsewhere")


def test_generate_sends_prompt_and_system_and_counts_tokens(gemini_conn):
    text, usage = gemini.generate("Which features? [chunk 0a1b]", system="Answer from the documentation.")
    assert text == "Stand-in answer from chunks: 0a1b"
    (call,) = gemini_conn.calls("generateContent")
    assert call.model == config.GEMINI_CHAT_MODEL and call.had_api_key
    assert call.prompt_text == "Which features? [chunk 0a1b]"
    assert call.system_text == "Answer from the documentation."
    assert usage.input_tokens == len("Answer from the documentation. Which features? [chunk 0a1b]".split())
    assert usage.total_tokens == usage.input_tokens + len(text.split())


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_fails_at_once_without_retries(gemini_conn, status):
    gemini_conn.fail_next(status)
    with pytest.raises(gemini.GeminiSetupError, match=f"rejected the API key \\(HTTP {status}\\)"):
        gemini.generate("hello")
    assert len(gemini_conn.requests) == 1


def test_rate_limit_then_success_is_retried(gemini_conn):
    gemini_conn.fail_next(429)
    gemini_conn.queue_replies("after the retry")
    text, _ = gemini.generate("hello")
    assert text == "after the retry"
    assert len(gemini_conn.calls("generateContent")) == 2


def test_server_errors_exhaust_the_client_retries_then_leave_it_to_the_task(gemini_conn):
    gemini_conn.fail_next(500, 500)
    with pytest.raises(RuntimeError, match="500") as err:
        gemini.generate("hello", attempts=2)
    assert not isinstance(err.value, PermanentError)
    assert len(gemini_conn.requests) == 2


def test_unreachable_host_is_a_retryable_error(monkeypatch):
    down = GeminiStandIn().start()
    down.stop()
    monkeypatch.setenv(CONN_ENV, connection_json(down))
    with pytest.raises(RuntimeError, match=f"Gemini call to {down.url} failed"):
        gemini.generate("hello", attempts=1, timeout_s=5)


def test_embeddings_rank_by_shared_words(gemini_conn):
    texts = ["Kestra 1.1 adds a new no-code editor", "Postgres stores taxi trips", "the no-code editor"]
    vectors = gemini.embed(texts)
    assert [round(math.sqrt(sum(v * v for v in vec)), 6) for vec in vectors] == [1.0, 1.0, 1.0]
    (call,) = gemini_conn.calls("batchEmbedContents")
    assert call.embedded_texts == texts and call.model == config.GEMINI_EMBEDDING_MODEL

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b))
    assert cosine(vectors[2], vectors[0]) > cosine(vectors[2], vectors[1])


def test_chat_operator_fails_at_once_on_a_rejected_key(gemini_conn):
    from include.zoomcamp.ai.chat import GeminiChatOperator

    gemini_conn.fail_next(401)
    operator = GeminiChatOperator(task_id="chat", prompt="hello")
    with pytest.raises(gemini.GeminiSetupError, match="rejected the API key"):
        operator.execute(context={})
    assert len(gemini_conn.requests) == 1


def test_chat_operator_uses_the_connection_host(gemini_conn):
    from include.zoomcamp.ai.chat import GeminiChatOperator

    operator = GeminiChatOperator(task_id="chat", prompt="Which? [chunk 77]", system_prompt="Be brief.")
    assert operator.execute(context={}) == "Stand-in answer from chunks: 77"
    (call,) = gemini_conn.calls("generateContent")
    assert call.system_text == "Be brief." and call.prompt_text == "Which? [chunk 77]"


GEMINI_DAG_FILES = ["10_chat_without_rag.py", "11_chat_with_rag.py", "debug-and-demo.py"]


def test_parsing_the_dag_files_that_call_gemini_does_not_import_its_client_library():
    """The dag-processor parses every file every 30 s; google-genai is imported by the tasks that call it."""
    code = ("import json, runpy, sys\n"
            f"for path in {[str(REPO_ROOT / 'dags' / name) for name in GEMINI_DAG_FILES]!r}:\n"
            "    runpy.run_path(path)\n"
            "    print(json.dumps([path, sorted(m for m in sys.modules if m.startswith('google.genai'))]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    imported = dict(json.loads(line) for line in out.stdout.splitlines() if line.startswith("["))
    assert len(imported) == len(GEMINI_DAG_FILES) and all(modules == [] for modules in imported.values()), imported
