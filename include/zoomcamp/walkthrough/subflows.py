"""Walkthrough 2_4: a child DAG (Kestra subflow) that aggregates orders, and how its parent reads it.

The child downloads the orders CSV (columns order_id, customer_name, customer_email, product_id,
price, quantity, total — the walkthrough's file) and summarises it with DuckDB: the walkthrough's
`sum(total)` and `avg(quantity)`, plus the number of orders and customers and the five customers
who spent the most. The summary is the child's return value (XCom `return_value` of its task).

The parent triggers the child, waits for it and then reads that XCom from the child's run — the
run id TriggerDagRunOperator pushed as XCom `trigger_run_id` — through the Task SDK
(`ti.xcom_pull(dag_id=..., run_id=...)`), never by recomputing it.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from include.zoomcamp import sql
from include.zoomcamp.errors import PermanentError

log = logging.getLogger(__name__)

CHILD_DAG_ID = "critical_service_subflow"
CHILD_TASK_ID = "return_data"  # its XCom is the subflow's output
REQUIRED_COLUMNS = ("order_id", "customer_name", "quantity", "total")
TOP_CUSTOMERS = 5

class OrdersFileError(PermanentError, ValueError):
    """The orders file cannot be aggregated as published: a retry would download the same."""


class ChildOutputMissing(PermanentError):
    """The parent finds no child run, or the child run returned nothing: a retry would read the same."""


def download_orders(url: str, path: Path) -> Path:
    """Stream the CSV to `path`. A 4xx answer raises OrdersFileError; 5xx and network errors raise
    requests' own exceptions (worth a retry)."""
    import requests

    with requests.get(url, stream=True, timeout=60) as response:
        if 400 <= response.status_code < 500:
            raise OrdersFileError(f"{url} answered HTTP {response.status_code}: no orders file there "
                                  f"(Variable orders_csv_url)")
        response.raise_for_status()
        with open(path, "wb") as out:
            for chunk in response.iter_content(1 << 16):
                out.write(chunk)
    return path


def aggregate_orders(csv_path: Path) -> dict:
    """The summary described in the module docstring; OrdersFileError when a column is missing."""
    import duckdb

    with duckdb.connect() as con:
        try:
            con.execute("CREATE TABLE orders AS SELECT * FROM read_csv(?, header = true)", [str(csv_path)])
        except duckdb.Error as exc:
            raise OrdersFileError(f"The orders file is not a readable CSV: {exc}") from None
        columns = [row[0] for row in con.execute("DESCRIBE orders").fetchall()]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise OrdersFileError(f"The orders file lacks column(s) {missing}; it has {columns}")
        try:
            summary = _records(con.execute(sql.render(__file__, "subflows_orders_summary")))[0]
            summary["top_customers"] = _records(con.execute(
                sql.render(__file__, "subflows_top_customers", top_customers=TOP_CUSTOMERS)))
        except duckdb.ConversionException as exc:
            raise OrdersFileError(f"The orders file has non-numeric quantity or total: {exc}") from None
    return summary


def _records(cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [{name: _plain(value) for name, value in zip(names, row)} for row in cursor.fetchall()]


def _plain(value):
    """JSON-friendly XCom values (DuckDB returns Decimal for sums of DECIMAL columns)."""
    from decimal import Decimal

    return float(value) if isinstance(value, Decimal) else value


def orders_summary(url: str) -> dict:
    """The child's task: download, aggregate, log and return the summary."""
    with tempfile.TemporaryDirectory(prefix="zoomcamp-orders-") as workdir:
        summary = aggregate_orders(download_orders(url, Path(workdir) / "orders.csv"))
    log.info("Orders summary of %s: %s", url, summary)
    return summary


def child_output(ti, child_dag_id: str, trigger_task_id: str, child_task_id: str):
    """The return value of `child_task_id` in the run `trigger_task_id` triggered (the parent's log step)."""
    child_run_id = ti.xcom_pull(task_ids=trigger_task_id, key="trigger_run_id")
    if not child_run_id:
        raise ChildOutputMissing(f"Task {trigger_task_id!r} pushed no trigger_run_id: no child run to read")
    value = ti.xcom_pull(dag_id=child_dag_id, run_id=child_run_id, task_ids=child_task_id, default=None)
    if value is None:
        raise ChildOutputMissing(f"{child_dag_id} run {child_run_id!r}: task {child_task_id!r} returned nothing")
    log.info("%s run %s returned: %s", child_dag_id, child_run_id, value)
    return value
