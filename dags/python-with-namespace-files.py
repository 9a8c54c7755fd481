"""python-with-namespace-files — runs the project file `include/walkthrough_files/process_sales_data.py`
over `sales_data.csv` (walkthrough 2_1, Kestra namespace dev.testing).

Its per-region summary goes to object storage as `sales_summary.csv`; the ObjectStoragePath is the XCom.
Details: docs/walkthrough.md#python-and-java-2_1
"""
from airflow.sdk import DAG, task

from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough import DEV_TESTING_TAGS, runtimes

STORAGE_BASE = runtimes.storage_base()

with DAG(
    dag_id="python-with-namespace-files",
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    tags=DEV_TESTING_TAGS,
    doc_md=__doc__,
):

    @task
    def process_sales_data(base: str, ti=None):
        return runtimes.run_sales_script(runtimes.storage_path(base, ti.dag_id, ti.run_id, "sales_summary.csv"))

    process_sales_data(STORAGE_BASE)
