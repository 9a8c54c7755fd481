"""ai_copilot — a plain-language request becomes a DAG draft (course 2.5.3, Kestra's AI Copilot).

Param `request` (trigger form or `airflow dags trigger ai_copilot --conf '{"request": "..."}'`); its
default is the course's exercise prompt. Gemini (connection `gemini_default`) gets, besides the request,
the operators and signatures of the providers installed here (read from the environment at run time),
the project's conventions and an example DAG. Each draft is validated for real: no top-level work, `ruff
check --select AIR`, and an import in a DagBag inside a bubblewrap sandbox (no network, nothing of the host
writable, no secrets; without bubblewrap the draft is not imported and is marked "not import-checked"). A
rejected draft goes back to the model with its errors, at most 3 rounds. A valid draft is written to
Variable `copilot_drafts_dir` (outside `dags/`: nothing generated runs unreviewed); its path and code are
the task's XCom. An invalid one fails the task with the last errors.
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
