"""02_python — run a Python script with its own dependencies (course flow 02).

A fresh virtual environment with its own `requests` asks Docker Hub for `kestra/kestra`'s pull count
and returns it as the XCom `downloads`.

Details: docs/course.md#02_python
"""
from airflow.sdk import DAG, task

from include.zoomcamp import config, templates
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS

API_URL = templates.variable(config.DOCKERHUB_API_URL_VAR, config.DEFAULT_DOCKERHUB_API_URL)

with DAG(dag_id="02_python", schedule=None, default_args=RETRY_DEFAULT_ARGS, tags=[config.TAG], doc_md=__doc__):

    @task.virtualenv(requirements=["requests>=2.31"], system_site_packages=False, multiple_outputs=True)
    def fetch_downloads(api_url: str) -> dict:
        import time

        import requests

        started = time.perf_counter()
        response = requests.get(api_url, timeout=30)
        response.raise_for_status()
        downloads = response.json().get("pull_count", "Not available")
        print(f"Number of downloads: {downloads} (script took {time.perf_counter() - started:.3f}s)")
        return {"downloads": downloads}

    fetch_downloads(API_URL)
