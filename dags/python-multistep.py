"""python-multistep — a file handed from one task to the next through object storage (walkthrough 2_1,
Kestra namespace dev.testing).

Step 1 writes `orders.csv`; step 2 receives its ObjectStoragePath through XCom and reads it (revenue per product).
Details: docs/walkthrough.md#python-and-java-2_1
"""
from airflow.sdk import DAG, task

from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough import DEV_TESTING_TAGS, runtimes

STORAGE_BASE = runtimes.storage_base()

with DAG(
    dag_id="python-multistep",
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    tags=DEV_TESTING_TAGS,
    doc_md=__doc__,
):

    @task
    def write_orders(base: str, ti=None):
        return runtimes.write_text(runtimes.storage_path(base, ti.dag_id, ti.run_id, "orders.csv"),
                                   runtimes.generate_orders())

    @task
    def read_orders(path) -> dict:
        return runtimes.revenue_by_product(path)

    read_orders(write_orders(STORAGE_BASE))
