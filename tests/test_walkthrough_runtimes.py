"""Walkthrough 2_1: Python and Java code run from DAGs, with project files under include/.

Every DAG runs for real (dag.test()). CSVs are read back through ObjectStoragePath from the XCom
their task returned and checked against values computed here independently (DuckDB, plain Python
over the project files). The Java DAGs run with the local JDK and Maven (offline, against Debian's
Maven repository); the Docker runner cannot run here (no engine): its selection and the container
it would start are checked, and both runners' missing-tool errors are provoked.
"""
from __future__ import annotations

import csv
import io

import duckdb
import pytest

from include.zoomcamp.walkthrough import runtimes
from tests.conftest import run_dag


def _ti(run, task_id):
    return next(ti for ti in run.get_task_instances() if ti.task_id == task_id)


def _xcom(run, task_id):
    """A task's return value as the next task receives it (an ObjectStoragePath comes back as one)."""
    from airflow.sdk.serde import deserialize

    return deserialize(_ti(run, task_id).xcom_pull(task_ids=task_id))


@pytest.fixture
def storage(tmp_path, monkeypatch):
    base = (tmp_path / "storage").as_uri()
    monkeypatch.setenv("AIRFLOW_VAR_WALKTHROUGH_STORAGE_BASE", base)
    return base


def expected_sample_data() -> list[dict]:
    prices = {"Widget": 9.99, "Gadget": 24.5, "Gizmo": 3.75}
    rows = []
    for day in range(1, 15):
        for i, (product, price) in enumerate(prices.items()):
            units = (day * 3 + i * 5) % 17 + 1
            rows.append({"date": f"2024-01-{day:02d}", "product": product, "units": str(units),
                         "unit_price": str(price), "revenue": str(round(units * price, 2))})
    return rows


def test_python_data_processing_saves_the_sample_data_set(dagbag, storage):
    run = run_dag(dagbag.get_dag("python-data-processing"))
    assert run.state == "success"
    path = _xcom(run, "save_csv")
    assert str(path).startswith(storage + "/python-data-processing/")
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [{k: (str(float(v)) if k in ("unit_price", "revenue") else v) for k, v in r.items()} for r in rows] == [
        {**r, "unit_price": str(float(r["unit_price"])), "revenue": str(float(r["revenue"]))} for r in expected_sample_data()]


def test_python_with_namespace_files_runs_the_project_script(dagbag, storage):
    run = run_dag(dagbag.get_dag("python-with-namespace-files"))
    assert run.state == "success"
    path = _xcom(run, "process_sales_data")
    assert str(path).startswith(storage + "/python-with-namespace-files/") and path.name == "sales_summary.csv"
    with duckdb.connect() as con:
        expected = con.execute(
            "SELECT region, count(*) AS orders, sum(quantity) AS units, sum(quantity * unit_price) AS revenue "
            "FROM read_csv(?, header = true) GROUP BY region ORDER BY revenue DESC, region",
            [str(runtimes.SALES_CSV)]).fetchall()
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [(r["region"], int(r["orders"]), int(r["units"]), r["revenue"]) for r in rows] == [
        (region, orders, units, f"{revenue:.2f}") for region, orders, units, revenue in expected]


def test_python_multistep_hands_the_file_over_through_object_storage(dagbag, storage):
    run = run_dag(dagbag.get_dag("python-multistep"))
    assert run.state == "success"
    path = _xcom(run, "write_orders")
    assert str(path).startswith(storage + "/python-multistep/") and path.name == "orders.csv"
    with duckdb.connect() as con:
        con.execute("CREATE TABLE o AS SELECT * FROM read_csv(?, header = true)", [path.path])
        per_product = con.execute("SELECT product, count(*), sum(quantity), round(sum(quantity * unit_price), 2) "
                                  "FROM o GROUP BY product").fetchall()
        total, count = con.execute("SELECT round(sum(quantity * unit_price), 2), count(*) FROM o").fetchone()
    assert _xcom(run, "read_orders") == {
        "orders": count, "total_revenue": total,
        "products": {p: {"orders": n, "units": u, "revenue": r} for p, n, u, r in per_product}}


def test_storage_base_must_be_a_url():
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="walkthrough_storage_base = '/tmp/x' is not a URL"):
        runtimes.storage_path("/tmp/x", "d", "r", "f.csv")


def test_storage_base_on_gcp_reads_through_the_gcp_connection():
    path = runtimes.storage_path("gs://bucket/prefix/", "python-multistep", "manual__2024-01-01T00:00:00+00:00", "o.csv")
    assert str(path) == "gs://google_cloud_default@bucket/prefix/python-multistep/manual__2024-01-01T00_00_00_00_00/o.csv"


# --- Java ---------------------------------------------------------------------------------------

def expected_total_revenue() -> str:
    from decimal import Decimal

    with open(runtimes.SALES_CSV) as f:
        return str(sum(int(r["quantity"]) * Decimal(r["unit_price"]) for r in csv.DictReader(f)))


def expected_total_orders(days: int = 28) -> int:
    return sum((day * 7) % 11 + 3 for day in range(1, days + 1))


JAVA_RUNS = {
    "java-hello-world": ("compile_and_run", lambda: "Hello, World from Java!"),
    "java-with-namespace-files": ("run_data_processor", lambda: f"TOTAL_REVENUE={expected_total_revenue()}"),
    "java-maven-project": ("build_and_run", lambda: f"TOTAL_ORDERS={expected_total_orders()}"),
}


@pytest.mark.parametrize("dag_id", JAVA_RUNS)
def test_java_dag_runs_with_the_local_jdk(dagbag, dag_id):
    from airflow.providers.standard.operators.bash import BashOperator

    task_id, expected = JAVA_RUNS[dag_id]
    dag = dagbag.get_dag(dag_id)
    assert isinstance(dag.get_task(task_id), BashOperator)  # no Docker engine here: the local runner
    run = run_dag(dag)
    assert run.state == "success"
    assert _xcom(run, task_id) == expected()
