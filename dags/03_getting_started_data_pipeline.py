"""03_getting_started_data_pipeline — extract, transform, query (course flow 03).

The products JSON, the columns of param `columns_to_keep`, the average price per brand with DuckDB,
kept as a CSV file and returned as the task's output.

Details: docs/course.md#03_getting_started_data_pipeline
"""
from airflow.sdk import DAG, Param, task

from include.zoomcamp import config, products, templates
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS

PRODUCTS_URL = templates.variable(config.PRODUCTS_URL_VAR, config.DEFAULT_PRODUCTS_URL)
RESULTS_DIR = templates.variable(config.RESULTS_DIR_VAR, config.default_results_dir())

with DAG(
    dag_id="03_getting_started_data_pipeline",
    schedule=None,
    params={"columns_to_keep": Param(["brand", "price"], type="array", items={"type": "string"}, minItems=1,
                                     title="Columns to keep")},
    default_args=RETRY_DEFAULT_ARGS,
    tags=[config.TAG],
    doc_md=__doc__,
):

    @task
    def extract(url: str) -> list[dict]:
        return products.download_products(url)

    @task
    def transform(raw: list[dict], params=None) -> list[dict]:
        return products.keep_columns(raw, params["columns_to_keep"])

    @task
    def query(rows: list[dict], results_dir: str, run_id=None) -> dict:
        return products.average_price_by_brand(rows, results_dir, run_id)

    query(transform(extract(PRODUCTS_URL)), RESULTS_DIR)
