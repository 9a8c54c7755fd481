"""11_chat_with_rag — the same question, answered from the release notes (course flow 11, section 2.5).

Ingest the release notes as embedded chunks in Postgres, retrieve the closest ones, and ask Gemini to
answer from them; the answer is the task's XCom.

Details: docs/ai.md#11_chat_with_rag--the-same-question-with-retrieval
"""
from airflow.sdk import DAG, Param, task

from include.zoomcamp import config, templates
from include.zoomcamp.ai import rag
from include.zoomcamp.ai.chat import GeminiChatOperator
from include.zoomcamp.ai.prompts import QUESTION, RAG_SYSTEM_MESSAGE
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS

DOCUMENT_URL = templates.variable(config.RAG_DOCUMENT_URL_VAR, config.DEFAULT_RAG_DOCUMENT_URL)

with DAG(
    dag_id="11_chat_with_rag",
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    params={
        "question": Param(QUESTION, type="string", minLength=1, description="What to ask Gemini"),
        "drop": Param(True, type="boolean", description="Replace what an earlier ingest stored"),
        "top_k": Param(5, type="integer", minimum=1, maximum=20, description="Chunks given to the model"),
    },
    tags=[config.TAG],
    doc_md=__doc__,
):

    @task
    def ingest_release_notes(url: str, params=None) -> dict:
        return rag.ingest(url, drop=params["drop"])

    @task(multiple_outputs=True)
    def retrieve_context(params=None) -> dict:
        chunks = rag.retrieve(params["question"], params["top_k"])
        return {"prompt": rag.context_prompt(params["question"], chunks), "sources": rag.sources_line(chunks)}

    context = retrieve_context()
    chat_with_rag = GeminiChatOperator(
        task_id="chat_with_rag",
        prompt=context["prompt"],
        system_prompt=RAG_SYSTEM_MESSAGE,
        answer_note="Chunks given to the model (id: score): {{ ti.xcom_pull('retrieve_context', key='sources') }}",
    )

    ingest_release_notes(DOCUMENT_URL) >> context >> chat_with_rag
