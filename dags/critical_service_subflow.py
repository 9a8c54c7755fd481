"""critical_service_subflow — the subflow (Kestra's `critical_service`) of walkthrough 2_4 (namespace dev.testing).

Downloads the orders CSV (Variable `orders_csv_url`) and summarises it with DuckDB; the summary is the XCom
of task `return_data`, the subflow's output that `parent_service` reads.
Details: docs/walkthrough.md#critical_service_subflow-and-parent_service-2_4
"""
from airflow.sdk import DAG, task

from include.zoomcamp import config, templates
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough import DEV_TESTING_TAGS, subflows

ORDERS_CSV_URL = templates.variable(config.ORDERS_CSV_URL_VAR, config.DEFAULT_ORDERS_CSV_URL)

with DAG(
    dag_id=subflows.CHILD_DAG_ID,
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    tags=DEV_TESTING_TAGS,
    doc_md=__doc__,
):

    @task(task_id=subflows.CHILD_TASK_ID)
    def return_data(url: str) -> dict:
        return subflows.orders_summary(url)

    return_data(ORDERS_CSV_URL)
