"""critical_service_subflow and parent_service — a subflow and its caller (walkthrough 2_4,
Kestra namespace dev.testing).

`critical_service_subflow` (the child, Kestra's `critical_service`): downloads the orders CSV
(Variable `orders_csv_url`) and summarises it with DuckDB — orders, customers, total revenue
(`sum(total)`), average quantity and the five customers who spent the most — returned as the
XCom of task `return_data` (the subflow's output). A 4xx answer or a file without the columns
order_id, customer_name, quantity, total fails at once; network errors and 5xx are retried.

`parent_service`: triggers the child and waits for it (Kestra's Subflow with `wait: true`), fails
when the child run fails (`transmitFailed: true`: no retry starts another child run), then logs
the child's output, read from the child run's XCom.
"""
from airflow.sdk import DAG, task

from include.zoomcamp import config, templates
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough import subflows

CHILD_DAG_ID = "critical_service_subflow"
CHILD_TASK_ID = "return_data"
ORDERS_CSV_URL = templates.variable(config.ORDERS_CSV_URL_VAR, config.DEFAULT_ORDERS_CSV_URL)
TAGS = [config.WALKTHROUGH_TAG, config.DEV_TESTING_NAMESPACE]

with DAG(
    dag_id=CHILD_DAG_ID,
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    tags=TAGS,
    doc_md=__doc__,
):

    @task(task_id=CHILD_TASK_ID)
    def return_data(url: str) -> dict:
        return subflows.orders_summary(url)

    return_data(ORDERS_CSV_URL)


with DAG(
    dag_id="parent_service",
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    tags=TAGS,
    doc_md=__doc__,
):
    # Trigger the child and wait (deferred to the triggerer); a failed child run fails this task.
    subflow_call = subflows.run_and_wait(task_id="subflow_call", trigger_dag_id=CHILD_DAG_ID)

    @task
    def log_subflow_output(ti=None):
        return subflows.child_output(ti, CHILD_DAG_ID, "subflow_call", CHILD_TASK_ID)

    subflow_call >> log_subflow_output()
