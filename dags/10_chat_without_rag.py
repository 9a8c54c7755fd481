"""10_chat_without_rag — ask Gemini about Kestra 1.1 with no context (course flow 10, section 2.5).

One chat completion (`gemini-2.5-flash`, set in connection `gemini_default`) through the common-ai
provider's LLMOperator: the question (param `question`, the course's by default) goes alone, with no
documentation. The answer is the task's XCom and is logged with the course's warning that it is
likely vague or wrong — compare it with 11_chat_with_rag. The token usage is logged.

Without an API key in `gemini_default` the task fails at once saying how to set it (docs/ai.md);
a rejected key fails without retries; rate limits and server errors are retried with backoff.
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
