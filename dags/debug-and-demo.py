"""debug-and-demo — logs at every level and a gate that fails on purpose (walkthrough 4_1,
Kestra namespace gcp.ecommerce).

Every 10 minutes once unpaused; `gate` fails until param/Variable `demo_gate_open` is true, then clearing it
replays the run (Kestra's Replay). An AI explainer writes each failure's explanation into the task's note.
Details: docs/ai.md#debug-and-demo--logs-a-failing-gate-and-an-ai-explanation-walkthrough-4_1
"""
from datetime import datetime

from airflow.sdk import DAG, Param, task

from include.zoomcamp.ai.explainer import explain_failure
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough import ECOMMERCE_TAGS, debug_demo

with DAG(
    dag_id="debug-and-demo",
    schedule="*/10 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    default_args={**RETRY_DEFAULT_ARGS, "on_failure_callback": explain_failure},
    params={"demo_gate_open": Param(False, type="boolean", description="Open the gate for this run")},
    tags=ECOMMERCE_TAGS,
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
