"""11_chat_with_rag — the same question, answered from the release notes (course flow 11, section 2.5).

- `ingest_release_notes`: fetches the document (Variable `rag_document_url`, Kestra 1.1's release notes
  by default), splits it at headings and paragraphs into bounded chunks, embeds them with Gemini
  (`gemini-embedding-001`) and stores text + vectors in the course's Postgres (connection `ny_taxi`, table
  `rag_chunks`), which every worker reaches.
  Param `drop` (true by default) replaces what an earlier ingest stored, in one transaction. Chunks
  are keyed by the hash of their text: re-ingesting an unchanged document makes no embedding call.
- `retrieve_context`: embeds the question and takes the `top_k` closest chunks (cosine similarity).
- `chat_with_rag`: asks `gemini-2.5-flash` under the course's system message (answer from the
  documentation, say so when it lacks the answer); logs the answer with the ids and scores of the
  chunks it was given. The answer is the task's XCom. Token usage is logged by every call.
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
