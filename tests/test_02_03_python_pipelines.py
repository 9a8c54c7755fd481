"""Flows 02 and 03 end to end against local HTTP servers standing in for Docker Hub and dummyjson."""
from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import run_dag
from tests.fixtures.taxi import FileServer


def _xcom(run, task_id, key="return_value"):
    ti = next(ti for ti in run.get_task_instances() if ti.task_id == task_id)
    return ti.xcom_pull(task_ids=task_id, key=key)


@pytest.mark.virtualenv
def test_python_flow_reads_pull_count_in_its_own_environment(dagbag, tmp_path, monkeypatch):
    api = tmp_path / "v2" / "repositories" / "kestra" / "kestra"
    api.mkdir(parents=True)
    (api / "index.html").write_text(json.dumps({"name": "kestra", "pull_count": 123456789}))
    with FileServer(tmp_path) as server:
        monkeypatch.setenv("AIRFLOW_VAR_DOCKERHUB_API_URL", f"{server.url}/v2/repositories/kestra/kestra/")
        run = run_dag(dagbag.get_dag("02_python"))
    assert run.state == "success"
    assert _xcom(run, "fetch_downloads", key="downloads") == 123456789


def test_getting_started_pipeline_keeps_columns_and_averages_by_brand(dagbag, tmp_path, monkeypatch):
    products = [
        {"id": 1, "brand": "Essence", "price": 9.99, "title": "Mascara"},
        {"id": 2, "brand": "Essence", "price": 5.01, "title": "Lipstick"},
        {"id": 3, "brand": "Glamour", "price": 19.994, "title": "Palette"},
        {"id": 4, "price": 1.0, "title": "No brand"},
    ]
    site = tmp_path / "site"
    (site / "products").mkdir(parents=True)
    (site / "products" / "index.html").write_text(json.dumps({"products": products, "total": 4}))
    monkeypatch.setenv("AIRFLOW_VAR_ZOOMCAMP_RESULTS_DIR", str(tmp_path / "results"))
    with FileServer(site) as server:
        monkeypatch.setenv("AIRFLOW_VAR_PRODUCTS_URL", f"{server.url}/products")
        run = run_dag(dagbag.get_dag("03_getting_started_data_pipeline"),
                      run_conf={"columns_to_keep": ["brand", "price", "title"]})
    assert run.state == "success"
    kept = _xcom(run, "transform")
    assert kept[3] == {"brand": "N/A", "price": 1.0, "title": "No brand"}
    assert all(set(row) == {"brand", "price", "title"} for row in kept)
    result = _xcom(run, "query")
    assert result["rows"] == [
        {"brand": "Glamour", "avg_price": 19.99},
        {"brand": "Essence", "avg_price": 7.5},
        {"brand": "N/A", "avg_price": 1.0},
    ]
    with open(result["file"]) as handle:
        assert list(csv.DictReader(handle))[0] == {"brand": "Glamour", "avg_price": "19.99"}
