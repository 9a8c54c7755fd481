"""An AI failure explainer: any DAG's `on_failure_callback` (walkthrough 4_1's AI assistant).

When a task fails for good it sends Gemini the exception, the tail of the task's log (secrets
masked) and the task's source, and puts the explanation where the user looks: the task instance's
note in the UI (written through Airflow's REST API with connection `airflow_api`) and the task log.

It never hides or changes the original failure (a callback runs after the task is marked failed,
and every error here is caught and logged), gives up within DEADLINE_S, and works when Gemini is
unreachable or has no key: the note then says so.
"""
from __future__ import annotations

import inspect
import logging
import re
import threading
import urllib.parse
from pathlib import Path

from include.zoomcamp import config
from include.zoomcamp.ai import gemini

log = logging.getLogger(__name__)

DEADLINE_S = 30
GEMINI_TIMEOUT_S = 20
API_TIMEOUT_S = 4
LOG_TAIL_LINES = 40
SOURCE_MAX_CHARS = 4000
# Airflow keeps at most 1000 characters of a task instance's note.
NOTE_MAX_CHARS = 1000
NOTE_TITLE = "AI explanation of this failure"

SYSTEM = ("You explain Apache Airflow task failures to a learner. Reply in under 120 words: the likely cause, "
          "then how to fix it, then how to re-run (clear the failed task). No preamble.")

# Key/token-like values a log line may still hold (Airflow already masks the secrets it knows).
_SECRET_PATTERNS = [
    re.compile(r"(?i)((?:api[_-]?key|token|password|secret|authorization)[\"']?\s*[:=]\s*[\"']?)([^\s\"',]+)"),
    re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._\-]+)"),
    re.compile(r"()(AIza[0-9A-Za-z_\-]{20,})"),
]


def explain_failure(context) -> None:
    """on_failure_callback: explain the failure in the TI note and the log, within DEADLINE_S, never raising."""
    result: dict = {}
    worker = threading.Thread(target=_explain_into, args=(context, result), name="ai-failure-explainer", daemon=True)
    worker.start()
    worker.join(DEADLINE_S)
    if worker.is_alive():
        log.warning("AI failure explainer gave up after %ss; the task's failure is unchanged", DEADLINE_S)


def _explain_into(context, result: dict) -> None:
    try:
        note = explanation_note(context)
        log.info("%s:\n%s", NOTE_TITLE, note)
        result["note"] = note
        write_note(context["ti"], note)
    except Exception:  # a callback must never add a failure of its own
        log.exception("AI failure explainer failed; the task's failure is unchanged")


def explanation_note(context) -> str:
    """The note text: Gemini's explanation, or why there is none."""
    ti = context["ti"]
    try:
        settings = gemini.gemini_settings()
    except Exception as exc:  # no key / no connection: say so in the note
        return _note(f"No explanation: Gemini is not configured. {exc}")
    prompt = failure_prompt(context)
    try:
        text, _ = gemini.generate(prompt, system=SYSTEM, settings=settings, timeout_s=GEMINI_TIMEOUT_S, attempts=1)
    except Exception as exc:
        where = settings.base_url or "the Gemini API"
        log.warning("Gemini unreachable for %s.%s: %s", ti.dag_id, ti.task_id, exc)
        return _note(f"No explanation: Gemini was unreachable ({where}: {type(exc).__name__}). "
                     "The failure itself is shown in the log.")
    return _note(f"{text.strip()}\n\n(model {settings.chat_model})")


def _note(body: str) -> str:
    note = f"{NOTE_TITLE}: {body}"
    return note if len(note) <= NOTE_MAX_CHARS else note[:NOTE_MAX_CHARS - 1] + "…"


def failure_prompt(context) -> str:
    ti, task = context["ti"], context["task"]
    exception = context.get("exception")
    return (
        f"Task {ti.task_id!r} of DAG {ti.dag_id!r} (run {ti.run_id}, try {ti.try_number}) failed.\n\n"
        f"Exception: {type(exception).__name__ if exception else 'unknown'}: {mask(str(exception))}\n\n"
        f"Last lines of the task's log:\n{log_tail(ti)}\n\n"
        f"The task's source:\n```python\n{task_source(task)}\n```"
    )


def mask(text: str) -> str:
    from airflow.sdk._shared.secrets_masker import redact

    text = str(redact(text))
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text


def task_source(task) -> str:
    """A TaskFlow task's function, else the DAG file that defines the operator (bounded)."""
    try:
        callable_ = getattr(task, "python_callable", None)
        source = inspect.getsource(callable_) if callable_ else Path(task.dag.fileloc).read_text()
    except (OSError, TypeError, AttributeError):
        return "(source not available)"
    return mask(source[:SOURCE_MAX_CHARS])


def log_tail(ti, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of this try's log file, as the worker wrote it (default log file layout)."""
    from airflow.sdk.configuration import conf

    base = Path(conf.get("logging", "base_log_folder"))
    pattern = f"dag_id={ti.dag_id}/run_id={ti.run_id}/task_id={ti.task_id}/**/attempt={ti.try_number}.log"
    files = sorted(base.glob(pattern))
    if not files:
        return "(log not available on this worker)"
    tail = files[-1].read_text(errors="replace").splitlines()[-lines:]
    return mask("\n".join(_readable(line) for line in tail))


def _readable(line: str) -> str:
    import json

    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict):
        return line
    extra = {k: v for k, v in entry.items() if k not in ("timestamp", "event", "level", "logger", "filename", "lineno")}
    return f"[{entry.get('level', '')}] {entry.get('event', '')}" + (f" {extra}" if extra else "")


def write_note(ti, note: str) -> bool:
    """Set the task instance's note through the REST API (connection `airflow_api`); False when not possible."""
    import requests
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(config.AIRFLOW_API_CONN_ID)
    except Exception:
        log.warning("No connection '%s' (the API server's URL, a user and password): the explanation is only "
                    "in this log; see docs/ai.md to have it shown as the task's note", config.AIRFLOW_API_CONN_ID)
        return False
    base = (conn.host or "").rstrip("/")
    if "://" not in base:
        base = f"http://{base}" + (f":{conn.port}" if conn.port else "")
    token = requests.post(f"{base}/auth/token", json={"username": conn.login, "password": conn.password},
                          timeout=API_TIMEOUT_S)
    token.raise_for_status()
    quote = urllib.parse.quote
    path = (f"api/v2/dags/{quote(ti.dag_id, safe='')}/dagRuns/{quote(ti.run_id, safe='')}"
            f"/taskInstances/{quote(ti.task_id, safe='')}")
    if ti.map_index is not None and ti.map_index >= 0:
        path += f"/{ti.map_index}"
    response = requests.patch(f"{base}/{path}", params={"update_mask": "note"}, json={"note": note},
                              headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                              timeout=API_TIMEOUT_S)
    response.raise_for_status()
    log.info("The explanation is the note of %s.%s (run %s)", ti.dag_id, ti.task_id, ti.run_id)
    return True
