"""Gemini through the `gemini_default` connection: its settings, a google-genai client, chat and embeddings.

The connection (type `pydanticai`, the common-ai provider's) holds the API key in its password (when it is
empty or `make run`'s placeholder, the environment variable GEMINI_API_KEY gives it), the
models in its extra (`{"model": "google:gemini-2.5-flash", "embedding_model": "gemini-embedding-001"}`)
and an optional host: the API's base URL, for a proxy or a local stand-in. The same connection serves
the provider's LLM operators (pydantic-ai's Google model) and the google-genai calls made here.

Error policy: no connection or key, a rejected key (401/403), an unknown model (404) or a bad request (400)
raise GeminiSetupError, which the project's error policy fails at once (no retry can fix them); 408, 429 and
5xx are retried by the client with exponential backoff within the call, then by the task's own retries
(RETRY_DEFAULT_ARGS).
The key is masked in logs and never returned, logged or pushed to XCom.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from include.zoomcamp import config
from include.zoomcamp.errors import PermanentError

if TYPE_CHECKING:  # google-genai is imported by the calls that use it: a DAG file's parse never needs it
    from google import genai

log = logging.getLogger(__name__)

# Statuses the client retries within one call; the task's retries take over after the last attempt.
RETRYABLE_STATUSES = [408, 429, 500, 502, 503, 504]
# Statuses no retry can fix: fail the task at once.
FATAL_STATUSES = {400: "was rejected as invalid", 401: "rejected the API key", 403: "rejected the API key",
                  404: "does not know the model"}
# gemini-embedding-001 takes at most 100 texts per batchEmbedContents request.
EMBED_BATCH = 100
# pydantic-ai's provider prefix for the Gemini API ("google:gemini-2.5-flash"); google-genai wants the bare name.
MODEL_PREFIX = "google:"

# The key when the connection has none: the variable Google's own SDKs and tools read.
KEY_ENV = "GEMINI_API_KEY"

HOW_TO_SET = (
    "Set it in the UI (Admin > Connections > {conn_id}: type 'Pydantic AI', API Key = your key from "
    "https://aistudio.google.com/apikey), or as an environment variable "
    "AIRFLOW_CONN_{env}='{{\"conn_type\": \"pydanticai\", \"password\": \"<your key>\"}}', or in your "
    "secrets backend, or as " + KEY_ENV + "=<your key> in the environment of `make run`; see docs/ai.md."
)


class GeminiSetupError(PermanentError):
    """Gemini cannot answer as set up: no connection or API key, a key it rejects, a model it does not know, a
    request it refuses as invalid. The message names the connection and what to do."""


@dataclass(frozen=True)
class GeminiSettings:
    conn_id: str
    api_key: str = field(repr=False)
    chat_model: str
    embedding_model: str
    base_url: str | None


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int
    output_tokens: int
    total_tokens: int


def bare_model(name: str) -> str:
    return name.removeprefix(MODEL_PREFIX).removeprefix("models/")


def provider_model(name: str) -> str:
    """The model name as pydantic-ai (the common-ai provider) wants it: `google:<model>`."""
    return MODEL_PREFIX + bare_model(name)


def _how_to_set(conn_id: str) -> str:
    return HOW_TO_SET.format(conn_id=conn_id, env=conn_id.upper())


def gemini_settings(conn_id: str = config.GEMINI_CONN_ID) -> GeminiSettings:
    """The connection's settings; fails (no retry) naming the connection when it has no usable key."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise GeminiSetupError(f"Gemini connection '{conn_id}' is not defined. {_how_to_set(conn_id)}") from None
    key = (conn.password or "").strip()
    if not key or key == config.GEMINI_KEY_PLACEHOLDER:
        # the connection's own key first (UI, CLI, secrets backend); the placeholder never hides this one
        environment_key = os.environ.get(KEY_ENV, "").strip()
        if not environment_key:
            raise GeminiSetupError(
                f"Gemini connection '{conn_id}' has no API key (the password is "
                f"{'the placeholder' if key else 'empty'}) and {KEY_ENV} is not set. {_how_to_set(conn_id)}"
            )
        key = environment_key
    mask_secret(key)
    extra = conn.extra_dejson
    host = (conn.host or "").strip()
    if host and "://" not in host:
        host = "https://" + host
    return GeminiSettings(
        conn_id=conn_id,
        api_key=key,
        chat_model=bare_model(extra.get("model") or config.GEMINI_CHAT_MODEL),
        embedding_model=bare_model(extra.get("embedding_model") or config.GEMINI_EMBEDDING_MODEL),
        base_url=host or None,
    )


def gemini_client(settings: GeminiSettings, *, timeout_s: float = 120, attempts: int = 4) -> genai.Client:
    """A google-genai client for the connection: its key, its host as base URL, retries on 429/5xx."""
    from google import genai
    from google.genai import types

    retry = types.HttpRetryOptions(attempts=attempts, initial_delay=1.0, max_delay=30.0, exp_base=2.0,
                                   http_status_codes=RETRYABLE_STATUSES)
    options = types.HttpOptions(base_url=settings.base_url, timeout=int(timeout_s * 1000), retry_options=retry)
    return genai.Client(api_key=settings.api_key, http_options=options)


def classify(exc: Exception, settings: GeminiSettings) -> Exception:
    """The exception to raise for a failed call: GeminiSetupError for what a retry cannot fix."""
    code = getattr(exc, "code", None) or getattr(exc, "status_code", None)
    if code in FATAL_STATUSES:
        return GeminiSetupError(
            f"Gemini (connection '{settings.conn_id}') {FATAL_STATUSES[code]} (HTTP {code}): {_message(exc)}"
            + (f" {_how_to_set(settings.conn_id)}" if code in (401, 403) else "")
        )
    where = settings.base_url or "the Gemini API"
    return RuntimeError(f"Gemini call to {where} failed (connection '{settings.conn_id}'): "
                        f"{type(exc).__name__}: {_message(exc)}")


def _message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


def generate(
    prompt: str,
    system: str | None = None,
    *,
    settings: GeminiSettings | None = None,
    model: str | None = None,
    timeout_s: float = 120,
    attempts: int = 4,
) -> tuple[str, TokenUsage]:
    """One generateContent call: (answer text, token usage). The usage is logged."""
    from google.genai import errors, types

    settings = settings or gemini_settings()
    model = bare_model(model or settings.chat_model)
    client = gemini_client(settings, timeout_s=timeout_s, attempts=attempts)
    try:
        response = client.models.generate_content(
            model=model,
            contents=prompt,
            config=types.GenerateContentConfig(system_instruction=system) if system else None,
        )
    except (errors.APIError, httpx.HTTPError) as exc:
        raise classify(exc, settings) from exc
    meta = response.usage_metadata
    prompt_tokens = (meta and meta.prompt_token_count) or 0
    output_tokens = (meta and meta.candidates_token_count) or 0
    usage = TokenUsage(prompt_tokens, output_tokens, (meta and meta.total_token_count) or prompt_tokens + output_tokens)
    log.info("Gemini generateContent: model=%s, input_tokens=%s, output_tokens=%s, total_tokens=%s",
             model, usage.input_tokens, usage.output_tokens, usage.total_tokens)
    text = response.text
    if not text:
        raise RuntimeError(f"Gemini ({model}) returned no text (finish reason: {_finish_reason(response)})")
    return text, usage


def _finish_reason(response) -> str:
    candidates = response.candidates or []
    return str(candidates[0].finish_reason) if candidates else "no candidates"


def embed(
    texts: list[str],
    *,
    settings: GeminiSettings | None = None,
    task_type: str | None = None,
    timeout_s: float = 120,
) -> list[list[float]]:
    """One vector per text (batchEmbedContents, 100 texts a request); logs the number of texts and characters."""
    if not texts:
        return []
    from google.genai import errors, types

    settings = settings or gemini_settings()
    client = gemini_client(settings, timeout_s=timeout_s)
    embed_config = types.EmbedContentConfig(task_type=task_type) if task_type else None
    vectors: list[list[float]] = []
    for start in range(0, len(texts), EMBED_BATCH):
        batch = texts[start:start + EMBED_BATCH]
        try:
            response = client.models.embed_content(model=settings.embedding_model, contents=batch, config=embed_config)
        except (errors.APIError, httpx.HTTPError) as exc:
            raise classify(exc, settings) from exc
        vectors.extend(list(e.values) for e in response.embeddings)
    if len(vectors) != len(texts):
        raise RuntimeError(f"Gemini returned {len(vectors)} embeddings for {len(texts)} texts")
    log.info("Gemini embedContent: model=%s, texts=%s, characters=%s",
             settings.embedding_model, len(texts), sum(len(t) for t in texts))
    return vectors
