"""parent_service — triggers `critical_service_subflow`, waits for it and logs its output (walkthrough 2_4,
Kestra namespace dev.testing).

Kestra's Subflow with `wait: true` and `transmitFailed: true`: a failed child run fails the parent.
Details: docs/walkthrough.md#critical_service_subflow-and-parent_service-2_4
"""
from airflow.sdk import DAG, task

from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.operators import run_and_wait
from include.zoomcamp.walkthrough import DEV_TESTING_TAGS, subflows

with DAG(
    dag_id="parent_service",
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    tags=DEV_TESTING_TAGS,
    doc_md=__doc__,
):
    # Trigger the child and wait (deferred to the triggerer); a failed child run fails this task.
    subflow_call = run_and_wait(task_id="subflow_call", trigger_dag_id=subflows.CHILD_DAG_ID)

    @task
    def log_subflow_output(ti=None):
        return subflows.child_output(ti, subflows.CHILD_DAG_ID, "subflow_call", subflows.CHILD_TASK_ID)

    subflow_call >> log_subflow_output()
