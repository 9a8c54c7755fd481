"""Walkthrough 2_4: `critical_service_subflow` (the child) and `parent_service`.

The aggregation is checked directly; the parent/child pair runs on a real Airflow (the parent's
TriggerDagRunOperator waits for a run the scheduler executes: dag.test() has no scheduler), with
the orders CSV served over loopback.
"""
from __future__ import annotations

import pytest

from include.zoomcamp import config
from include.zoomcamp.walkthrough import subflows
from tests.fixtures.taxi import FileServer

PARENT, CHILD = "parent_service", "critical_service_subflow"
HEADER = "order_id,customer_name,customer_email,product_id,price,quantity,total"


def orders_csv(rows: int = 50) -> str:
    """The walkthrough's orders file shape: customers c0..c6, quantity 1..4, total = price * quantity."""
    lines = [HEADER]
    for i in range(1, rows + 1):
        price, quantity = 10 + i % 5 + 0.5, 1 + i % 4
        customer = f"c{i % 7}"
        lines.append(f"{i},{customer},{customer}@example.com,{100 + i % 9},{price},{quantity},{price * quantity:.2f}")
    return "\n".join(lines) + "\n"


def expected_summary(rows: int = 50) -> dict:
    totals, counts, quantities = {}, {}, []
    for i in range(1, rows + 1):
        price, quantity, customer = 10 + i % 5 + 0.5, 1 + i % 4, f"c{i % 7}"
        totals[customer] = totals.get(customer, 0) + round(price * quantity, 2)
        counts[customer] = counts.get(customer, 0) + 1
        quantities.append(quantity)
    top = sorted(totals, key=lambda c: (-totals[c], c))[:subflows.TOP_CUSTOMERS]
    return {"orders": rows, "customers": len(totals), "total_revenue": round(sum(totals.values()), 2),
            "avg_quantity": round(sum(quantities) / rows, 2),
            "top_customers": [{"customer_name": c, "orders": counts[c], "revenue": round(totals[c], 2)} for c in top]}


@pytest.fixture(scope="module")
def orders_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("orders-site")
    (root / "orders.csv").write_text(orders_csv())
    with FileServer(root) as server:
        yield root, server.url


def test_aggregation(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(orders_csv())
    assert subflows.aggregate_orders(path) == expected_summary()


def test_file_without_a_required_column_is_refused(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer_name,quantity\n1,a,2\n")
    with pytest.raises(subflows.OrdersFileError, match=r"lacks column\(s\) \['total'\]"):
        subflows.aggregate_orders(path)


def test_missing_file_fails_at_once(orders_site):
    from airflow.sdk import RetryAction

    from include.zoomcamp.errors import retry_policy

    with pytest.raises(subflows.OrdersFileError, match="answered HTTP 404") as raised:
        subflows.orders_summary(f"{orders_site[1]}/nowhere.csv")
    assert retry_policy().evaluate(raised.value, try_number=1, max_tries=4).action == RetryAction.FAIL


@pytest.fixture(scope="module")
def stack(airflow_stack, orders_site):
    for dag_id in (PARENT, CHILD):
        airflow_stack.wait_for_dag(dag_id)
    with airflow_stack.variables({config.ORDERS_CSV_URL_VAR: f"{orders_site[1]}/orders.csv"}):
        yield airflow_stack


def test_parent_waits_for_the_child_and_logs_its_output(stack):
    run_id = stack.trigger(PARENT)
    assert stack.wait_for_run(PARENT, run_id)["state"] == "success"
    child_run_id = stack.xcom(PARENT, run_id, "subflow_call", "trigger_run_id")
    assert stack.api("GET", stack.run_path(CHILD, child_run_id))["state"] == "success"
    child_value = stack.xcom(CHILD, child_run_id, "return_data")
    assert child_value == expected_summary()
    assert stack.xcom(PARENT, run_id, "log_subflow_output") == child_value
    log = stack.task_log(PARENT, run_id, "log_subflow_output")
    assert f"{CHILD} run {child_run_id} returned" in log and "total_revenue" in log


@pytest.mark.parametrize(("content", "message"), [
    (None, "answered HTTP 404"),
    ("order_id,customer_name,quantity\n1,a,2\n", "lacks column(s) ['total']"),
], ids=["orders-url-404", "missing-column"])
def test_parent_fails_when_the_child_fails(stack, orders_site, content, message):
    path = orders_site[0] / "orders.csv"
    good = path.read_text()
    path.unlink() if content is None else path.write_text(content)
    try:
        run_id = stack.trigger(PARENT)
        assert stack.wait_for_run(PARENT, run_id)["state"] == "failed"
    finally:
        path.write_text(good)
    parent = stack.task_instances(PARENT, run_id)
    assert parent["subflow_call"]["state"] == "failed" and parent["subflow_call"]["try_number"] == 1
    assert parent["log_subflow_output"]["state"] == "upstream_failed"
    child_run_id = stack.xcom(PARENT, run_id, "subflow_call", "trigger_run_id")
    child = stack.task_instances(CHILD, child_run_id)["return_data"]
    assert child["state"] == "failed" and child["try_number"] == 1
    assert message in stack.task_log(CHILD, child_run_id, "return_data")
