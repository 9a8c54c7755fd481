"""The failure explainer's own parts: what it masks before anything reaches Gemini or the task note, and
which log file it reads. (Its run on a real Airflow, note included, is in test_ai_flows.py.)"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from include.zoomcamp.ai import explainer

PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u"

# (what a log line, an exception or a task's source holds, the secret in it that must not go through)
SECRETS = {
    "postgres-uri": ("connection refused: postgresql://root:s3cr3t-Pa55@db.internal:5432/ny_taxi", "s3cr3t-Pa55"),
    "any-scheme-uri": ("broker amqp://guest:rabbit-pw-1@mq:5672// unreachable", "rabbit-pw-1"),
    "password-with-at": ("mysql+pymysql://app:p@ss-w0rd@db/app", "ss-w0rd"),
    "token-as-user": ("fatal: could not read from https://ghp_AbCdEfGhIjKlMnOpQrStUv0123456789@github.com/o/r.git",
                      "ghp_AbCdEfGhIjKlMnOpQrStUv0123456789"),
    "token-user-with-name": ("git clone https://x-access-token:gho_tokenvalue123@github.com/o/r", "gho_tokenvalue123"),
    "pem-block": (f"key = '''-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----'''\n",
                  "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"),
    "pem-cut-short": (f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}", "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u"),
    "pem-in-json": ('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0'
                    'BAQEFAASC\\n-----END PRIVATE KEY-----\\n"}', "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
    "pem-tail-only": (f"{PEM_BODY}\n-----END PRIVATE KEY-----\nTraceback (most recent call last):",
                      "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u"),
    "basic-auth-header": ("send: b'GET / HTTP/1.1\\r\\nAuthorization: Basic dXNlcjpodW50ZXIy\\r\\n'",
                          "dXNlcjpodW50ZXIy"),
    "basic-auth-dict": ("headers={'Authorization': 'Basic dXNlcjpodW50ZXIy', 'Accept': '*/*'}", "dXNlcjpodW50ZXIy"),
    "bearer": ("curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln' http://api",
               "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
    "bearer-alone": ("retrying with bearer ya29.a0AfH6SMBx-token", "ya29.a0AfH6SMBx-token"),
    "quoted-double": ('login(user="ana", password="correct horse battery staple")', "horse battery staple"),
    "quoted-single": ("db_password = 'two words here'", "two words here"),
    "quoted-json": ('{"user": "ana", "password": "my secret phrase", "port": 5432}', "my secret phrase"),
    "quoted-escaped": (r'client_secret="say \"hi\" twice" next', "twice"),
    "unquoted": ("export PGPASSWORD=hunter22 && psql", "hunter22"),
    "api-key-header": ("x-api-key: AbC123def456ghi", "AbC123def456ghi"),
    "google-api-key": ("request failed for key AIzaSyD-1234567890abcdefghijklmnopqrs", "AIzaSyD-1234567890abcdefghij"),
}


@pytest.mark.parametrize("text, secret", SECRETS.values(), ids=SECRETS.keys())
def test_each_kind_of_secret_is_masked(text, secret):
    masked = explainer.mask(text)
    assert secret not in masked, masked
    assert explainer.MASK in masked
    assert explainer.mask(masked) == masked  # masking twice changes nothing


def test_what_is_not_a_secret_stays_readable():
    text = ("Task failed: relation \"green_tripdata\" does not exist at https://github.com/o/r/blob/main/x.py "
            "line 12; see the token bucket docs. Basic setup done.")
    assert explainer.mask(text) == text
    masked = explainer.mask("postgresql://root:s3cr3t-Pa55@db.internal:5432/ny_taxi")
    assert masked == "postgresql://***@db.internal:5432/ny_taxi"  # where it failed to connect stays visible


def test_secrets_airflow_knows_are_masked_by_airflows_masker():
    from airflow.sdk.log import mask_secret

    mask_secret("plain-words-no-pattern-would-catch")  # as reading a connection's password does
    assert explainer.mask("got plain-words-no-pattern-would-catch back") == "got *** back"


def _ti(map_index: int = -1, try_number: int = 1):
    return SimpleNamespace(dag_id="d", run_id="manual__2026-01-01", task_id="load", map_index=map_index,
                           try_number=try_number)


def _write_log(base, ti, text: str):
    path = base / f"dag_id={ti.dag_id}/run_id={ti.run_id}/task_id={ti.task_id}"
    if ti.map_index >= 0:
        path /= f"map_index={ti.map_index}"
    path /= f"attempt={ti.try_number}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_mapped_instance_reads_its_own_log(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    for map_index in (2, 9, 10, 11):
        for try_number in (1, 2):
            _write_log(tmp_path, _ti(map_index, try_number), f"log of map_index {map_index} try {try_number}\n")
    _write_log(tmp_path, _ti(), "log of the unmapped task\n")
    assert explainer.log_tail(_ti(9, 2)) == "log of map_index 9 try 2"
    assert explainer.log_tail(_ti(10, 1)) == "log of map_index 10 try 1"
    assert explainer.log_tail(_ti()) == "log of the unmapped task"
    assert explainer.log_tail(_ti(12)) == "(log not available on this worker)"


def test_the_prompt_and_the_note_carry_no_secret(tmp_path, monkeypatch):
    """All that goes to Gemini (exception, log tail, source) and into the note is masked."""
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    ti = _ti(3)
    _write_log(tmp_path, ti, '{"event": "connecting", "level": "info", "password": "log line secret"}\n'
                             "Authorization: Basic bG9nOmxpbmVzZWNyZXQ=\n")

    def load():
        dsn = "postgresql://etl:source-secret@warehouse/db"
        return dsn

    exception = RuntimeError("could not clone https://ghp_ExceptionToken0123456789abcd@github.com/o/r")
    prompt = explainer.failure_prompt({"ti": ti, "task": SimpleNamespace(python_callable=load),
                                       "exception": exception})
    for secret in ("log line secret", "bG9nOmxpbmVzZWNyZXQ=", "source-secret", "ghp_ExceptionToken0123456789abcd"):
        assert secret not in prompt
    assert "[info] connecting" in prompt and "def load()" in prompt and "RuntimeError" in prompt

    note = explainer._note("Your password='the user typed this' is wrong; use the ny_taxi connection.")
    assert "the user typed this" not in note and note.startswith(explainer.NOTE_TITLE)
