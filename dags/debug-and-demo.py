"""debug-and-demo — logs at every level and a gate that fails on purpose (walkthrough 4_1,
Kestra namespace gcp.ecommerce).

Runs every 10 minutes once unpaused (it is paused at creation). `log_levels` writes INFO, DEBUG,
WARNING and ERROR lines; `gate` fails while param/Variable `demo_gate_open` is false, so a learner
opens it (Variable `demo_gate_open` = true, or trigger with the param) and clears the failed task to
re-run it (Kestra's Replay); `after_gate` then runs.

The AI failure explainer (include/zoomcamp/ai/explainer.py) is every task's on_failure_callback:
it asks Gemini (connection `gemini_default`) to explain the failure from the exception, the log's
tail and the task's source, and writes the answer as the task instance's note and in the log.
"""
from datetime import datetime

from airflow.sdk import DAG, Param, task

from include.zoomcamp import config
from include.zoomcamp.ai.explainer import explain_failure
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough import debug_demo

with DAG(
    dag_id="debug-and-demo",
    schedule="*/10 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    default_args={**RETRY_DEFAULT_ARGS, "on_failure_callback": explain_failure},
    params={"demo_gate_open": Param(False, type="boolean", description="Open the gate for this run")},
    tags=[config.WALKTHROUGH_TAG, config.ECOMMERCE_TAG],
    doc_md=__doc__,
):

    @task
    def log_levels():
        debug_demo.log_levels()

    @task
    def gate(params=None):
        return debug_demo.pass_gate(params["demo_gate_open"])

    @task
    def after_gate():
        return "The demo run passed the gate"

    log_levels() >> gate() >> after_gate()
