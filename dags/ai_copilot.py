"""ai_copilot — a plain-language request becomes a DAG draft (course 2.5.3, Kestra's AI Copilot).

Gemini drafts a DAG from param `request`; each draft is validated for real (no top-level work, ruff's
AIR rules, an import inside a bubblewrap sandbox), at most 3 rounds, and written outside `dags/`.

Details: docs/ai.md#ai-copilot
"""
from airflow.sdk import DAG, Param, task

from include.zoomcamp import config, templates
from include.zoomcamp.ai.copilot import drafting
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS

DRAFTS_DIR = templates.variable(config.COPILOT_DRAFTS_DIR_VAR, config.default_copilot_drafts_dir())

with DAG(
    dag_id="ai_copilot",
    schedule=None,
    params={
        "request": Param(
            drafting.EXERCISE_REQUEST,
            type="string",
            minLength=1,
            format="multiline",
            title="Request",
            description="What the DAG should do, in plain language.",
        ),
    },
    default_args=RETRY_DEFAULT_ARGS,
    tags=[config.TAG],
    doc_md=__doc__,
):

    @task
    def draft_dag(request: str, drafts_dir: str) -> dict:
        return drafting.draft_with_gemini(request, drafts_dir)

    draft_dag("{{ params.request }}", DRAFTS_DIR)
