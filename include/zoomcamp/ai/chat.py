"""Chat with Gemini through the common-ai provider's LLMOperator, under this project's error policy."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.ai.operators.llm import LLMOperator
from pydantic_ai.exceptions import ModelAPIError

from include.zoomcamp import config
from include.zoomcamp.ai import gemini


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
