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
from functools import cache
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

MASK = "***"


@cache
def _secret_patterns() -> list[tuple[re.Pattern, str]]:
    """What a log line, an exception or source code may hold that Airflow's masker (which hides the values
    the task has read, e.g. its connections' passwords, and dict values by key name) does not know of:
    (pattern, replacement), applied in this order."""
    from airflow.sdk._shared.secrets_masker import DEFAULT_SENSITIVE_FIELDS

    names = "|".join([r"api[_-]?key", "passwd", "pwd", *sorted(map(re.escape, DEFAULT_SENSITIVE_FIELDS))])
    schemes = "(?i:basic|bearer|digest|token|negotiate)"  # HTTP authorization schemes, before the credentials
    key = rf"(?i:(?:{names})[\w-]*[\"']?\s*[:=]{{1,2}}\s*)"
    return [
        # PEM private keys, whole blocks (a block cut short by the source's bound: to the end of the text) ...
        (re.compile(r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----).*?(?:(-----END [A-Z0-9 ]*PRIVATE KEY-----)|\Z)",
                    re.DOTALL), rf"\1{MASK}-----END PRIVATE KEY-----"),
        # ... and the end of a block whose beginning lies before the log's tail.
        (re.compile(r"^(?:[A-Za-z0-9+/=]{16,}\r?\n)+(-----END [A-Z0-9 ]*PRIVATE KEY-----)", re.MULTILINE),
         rf"{MASK}\n\1"),
        # Any URL's user info: scheme://user:password@host, https://<token>@github.com (up to its last '@').
        (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s\"'<>]*@"), rf"\1{MASK}@"),
        # HTTP authorization values whatever their scheme (Authorization: Basic xxx, 'Authorization': 'Bearer x').
        (re.compile(rf"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:{schemes}\s+)?)[^\s\"',;]+"), rf"\1{MASK}"),
        # name = "quoted value", name: 'quoted value', "name": "JSON value" (spaces and all).
        (re.compile(rf"({key})\"(?:[^\"\\\n]|\\.)*\""), rf'\1"{MASK}"'),
        (re.compile(rf"({key})'(?:[^'\\\n]|\\.)*'"), rf"\1'{MASK}'"),
        # name=value unquoted, to the next space, quote or separator.
        (re.compile(rf"({key})(?![\"']|{schemes}\s)[^\s\"',;)}}\]]+"), rf"\1{MASK}"),
        # A scheme's credentials outside a header name: "Bearer eyJ...", "Basic dXNlcjpwYXNz".
        (re.compile(r"(\b(?:[Bb]earer|BEARER|Basic)\s+)[A-Za-z0-9._~+/-]{8,}=*"), rf"\1{MASK}"),
        # Tokens recognisable by their shape: Google API keys, GitHub tokens.
        (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), MASK),
        (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), MASK),
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
    note = f"{NOTE_TITLE}: {mask(body)}"  # the model's answer too: it may quote what it was sent
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
    """`text` with the secrets Airflow's masker knows and those `_secret_patterns` recognise replaced by ***."""
    from airflow.sdk._shared.secrets_masker import redact

    text = str(redact(text))
    for pattern, replacement in _secret_patterns():
        text = pattern.sub(replacement, text)
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
    """The last lines of this try's log file, as the worker wrote it."""
    path = log_path(ti)
    if not path.is_file():
        return "(log not available on this worker)"
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    return mask("\n".join(_readable(line) for line in tail))


def log_path(ti) -> Path:
    """Where the worker writes this try's log: `[logging] log_filename_template` rendered for `ti` (as Airflow's
    executors render it: its map index and try number included) under `[logging] base_log_folder`."""
    import jinja2
    from airflow.sdk.configuration import conf

    template = jinja2.Template(conf.get("logging", "log_filename_template"))
    return Path(conf.get("logging", "base_log_folder")) / template.render(ti=ti)


def _readable(line: str) -> str:
    import json

    from airflow.sdk._shared.secrets_masker import redact

    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict):
        return line
    entry = redact(entry)  # values of keys named like secrets (password, token, ...)
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
