"""10_chat_without_rag — ask Gemini about Kestra 1.1 with no context (course flow 10, section 2.5).

One chat completion through the common-ai provider's LLMOperator (connection `gemini_default`); the
answer is the task's XCom, logged with the course's warning.

Details: docs/ai.md#10_chat_without_rag--a-model-without-context
"""
from airflow.sdk import DAG, Param

from include.zoomcamp import config
from include.zoomcamp.ai.chat import GeminiChatOperator
from include.zoomcamp.ai.prompts import NO_CONTEXT_CAVEAT, QUESTION
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS

with DAG(
    dag_id="10_chat_without_rag",
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    params={"question": Param(QUESTION, type="string", minLength=1, description="What to ask Gemini")},
    tags=[config.TAG],
    doc_md=__doc__,
):
    chat_without_rag = GeminiChatOperator(
        task_id="chat_without_rag",
        prompt="{{ params.question }}",
        answer_note=NO_CONTEXT_CAVEAT,
    )
