"""python-data-processing — a sample data set built with pandas in its own environment, saved as
`sample_data.csv` (walkthrough 2_1, Kestra namespace dev.testing).

The file goes to object storage under Variable `walkthrough_storage_base`; its ObjectStoragePath is the XCom.
Details: docs/walkthrough.md#python-and-java-2_1
"""
from airflow.sdk import DAG, task

from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough import DEV_TESTING_TAGS, runtimes

STORAGE_BASE = runtimes.storage_base()

with DAG(
    dag_id="python-data-processing",
    schedule=None,
    default_args=RETRY_DEFAULT_ARGS,
    tags=DEV_TESTING_TAGS,
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
