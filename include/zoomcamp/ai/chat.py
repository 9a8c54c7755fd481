"""Chat with Gemini through the common-ai provider's LLMOperator, under this project's error policy."""
from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.providers.common.ai.hooks.pydantic_ai import PydanticAIHook
from airflow.providers.common.ai.operators.llm import LLMOperator
from pydantic_ai.exceptions import ModelAPIError

from include.zoomcamp import config
from include.zoomcamp.ai import gemini


class GeminiKeyHook(PydanticAIHook):
    """The provider's hook with the key `gemini.gemini_settings` resolved: the connection's, else
    GEMINI_API_KEY — so the connection's placeholder never reaches the API in place of a real key."""

    def __init__(self, *, api_key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._api_key = api_key

    def _get_provider_kwargs(self, api_key: str | None, base_url: str | None, extra: dict[str, Any]) -> dict[str, Any]:
        return super()._get_provider_kwargs(self._api_key, base_url, extra)


class GeminiChatOperator(LLMOperator):
    """LLMOperator on the `gemini_default` connection: checks the key first, fails at once on 401/403.

    The answer is the task's XCom (LLMOperator's return value) and is logged, followed by `answer_note`
    (templated: a caveat, or the chunks the answer drew on). The provider logs the token usage.
    429 and 5xx errors fail the attempt and the task's retries (exponential backoff) try again.
    """

    template_fields: Sequence[str] = (*LLMOperator.template_fields, "answer_note")

    def __init__(self, *, answer_note: str = "", llm_conn_id: str = config.GEMINI_CONN_ID, **kwargs: Any) -> None:
        super().__init__(llm_conn_id=llm_conn_id, **kwargs)
        self.answer_note = answer_note

    @cached_property
    def llm_hook(self) -> PydanticAIHook:
        return GeminiKeyHook(api_key=gemini.gemini_settings(self.llm_conn_id).api_key, llm_conn_id=self.llm_conn_id,
                             model_id=self.model_id, fallback_conn_ids=self.fallback_conn_ids)

    def execute(self, context: Any) -> Any:
        settings = gemini.gemini_settings(self.llm_conn_id)
        if not self.model_id:
            self.model_id = gemini.provider_model(settings.chat_model)
        try:
            answer = super().execute(context)
        except ModelAPIError as exc:
            raise gemini.classify(exc, settings) from exc
        self.log.info("Answer from %s:\n%s", settings.chat_model, answer)
        if self.answer_note:
            self.log.info("%s", self.answer_note)
        return answer
