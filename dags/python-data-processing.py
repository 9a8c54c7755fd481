"""python-data-processing, python-with-namespace-files, python-multistep — Python code in flows
(walkthrough 2_1, Kestra namespace dev.testing).

Kestra's Python script tasks become Airflow tasks; their output files become objects under
Variable `walkthrough_storage_base` (Airflow object storage: `file://<data dir>/walkthrough-files`
by default, `gs://<bucket>/<prefix>` on GCP), at `<base>/<dag_id>/<run_id>/<file>`. Each task
returns the ObjectStoragePath it wrote (its XCom): the next task — or the user — reads it there.

`python-data-processing`: an isolated virtual environment with its own pandas (cached under the
data dir's `venvs/`, so only the first run installs it) builds a small sample data set; the next
task saves it as `sample_data.csv`.

`python-with-namespace-files`: runs `include/walkthrough_files/process_sales_data.py` — a project
file shipped with the DAGs, Kestra's namespace file — over `sales_data.csv` next to it, and saves
its per-region summary as `sales_summary.csv`.

`python-multistep`: step 1 writes `orders.csv`; step 2 receives its ObjectStoragePath through XCom
and reads it (revenue per product).
"""
from airflow.sdk import DAG, task

from include.zoomcamp import config, templates
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough import runtimes

STORAGE_BASE = templates.variable(config.WALKTHROUGH_STORAGE_BASE_VAR, runtimes.default_storage_base())
TAGS = [config.WALKTHROUGH_TAG, config.DEV_TESTING_NAMESPACE]

with DAG(
    dag_id="python-data-processing",
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    tags=TAGS,
    doc_md=__doc__,
):

    @task.virtualenv(requirements=[runtimes.PANDAS_REQUIREMENT], system_site_packages=False,
                     venv_cache_path=runtimes.venv_cache())
    def build_sample_data() -> str:
        """Two weeks of daily sales of three products; runs in its own environment, returns CSV text."""
        import pandas as pd

        prices = {"Widget": 9.99, "Gadget": 24.5, "Gizmo": 3.75}
        days = pd.date_range("2024-01-01", periods=14, freq="D")
        rows = [
            {"date": day.date().isoformat(), "product": product, "units": (day.day * 3 + i * 5) % 17 + 1,
             "unit_price": price}
            for day in days
            for i, (product, price) in enumerate(prices.items())
        ]
        data = pd.DataFrame(rows)
        data["revenue"] = (data["units"] * data["unit_price"]).round(2)
        print(data.groupby("product")[["units", "revenue"]].sum().round(2).to_string())
        return data.to_csv(index=False)

    @task
    def save_csv(csv_text: str, base: str, ti=None):
        return runtimes.write_text(runtimes.storage_path(base, ti.dag_id, ti.run_id, "sample_data.csv"), csv_text)

    save_csv(build_sample_data(), STORAGE_BASE)


with DAG(
    dag_id="python-with-namespace-files",
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    tags=TAGS,
    doc_md=__doc__,
):

    @task
    def process_sales_data(base: str, ti=None):
        return runtimes.run_sales_script(runtimes.storage_path(base, ti.dag_id, ti.run_id, "sales_summary.csv"))

    process_sales_data(STORAGE_BASE)


with DAG(
    dag_id="python-multistep",
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    tags=TAGS,
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
