"""Walkthrough 3_1 (`ecommerce_ingest_and_clean_with_errors`) with dag.test() on the GCS and BigQuery emulators.

The generated sample export goes to gs://<bucket>/data.csv; the DAG's tables are compared with a
verdict computed here, in Python, over the same bytes (the reject rules written again, independently
of the SQL in include/zoomcamp/walkthrough/ecommerce.py): rejects per reason, the clean rows
themselves, raw = clean + errors; a rerun leaves the same tables; a reconciliation that does not add
up fails the check at once, saying why; a missing data.csv or one with a wrong header fails naming it.
"""
from __future__ import annotations

import collections
import csv
import datetime as dt
import io
from decimal import Decimal, InvalidOperation

import pytest

from include.zoomcamp import config
from include.zoomcamp.walkthrough import ecommerce, samples
from tests.conftest import run_dag
from tests.fixtures.yellow_cab import bigquery_client, storage_client

DAG_ID = "ecommerce_ingest_and_clean_with_errors"
PROJECT = config.GCP_DEFAULTS[config.GCP_PROJECT_ID_VAR]
BUCKET = config.GCP_DEFAULTS[config.GCP_BUCKET_NAME_VAR]
RAW = f"`{PROJECT}.raw.transactions_raw`"
CLEAN = f"`{PROJECT}.clean.transactions`"
ERRORS = f"`{PROJECT}.clean.transactions_errors`"
CHECK = "check_raw_equals_clean_plus_errors"


# --- the verdict, computed independently --------------------------------------------------------------

def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _date(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text.strip(), "%m/%d/%Y %H:%M")
    except ValueError:
        return None


def verdict(row: dict) -> tuple[str | None, tuple | None]:
    """(reject reason, None) or (None, the clean row), rules tried in the documented order."""
    invoice = row["InvoiceNo"].strip()
    quantity, price, when = _int(row["Quantity"]), _decimal(row["UnitPrice"]), _date(row["InvoiceDate"])
    customer = row["CustomerID"].strip()
    checks = (("missing_invoice_no", not invoice), ("cancellation", invoice[:1] in ("C", "c")),
              ("unparsable_quantity", quantity is None), ("unparsable_unit_price", price is None),
              ("unparsable_invoice_date", when is None),
              ("quantity_not_positive", quantity is not None and quantity <= 0),
              ("unit_price_not_positive", price is not None and price <= 0), ("missing_customer", not customer))
    reason = next((name for name, failed in checks if failed), None)
    if reason:
        return reason, None
    text = [row[c].strip() or None for c in ("StockCode", "Description", "Country")]
    return None, (invoice, text[0], text[1], quantity, when, price, customer, text[2])


@pytest.fixture(scope="module")
def export() -> bytes:
    return samples.retail_export_csv()


@pytest.fixture(scope="module")
def expected(export):
    rows = list(csv.DictReader(io.StringIO(export.decode())))
    verdicts = [verdict(row) for row in rows]
    return {"raw": len(rows),
            "reasons": collections.Counter(reason for reason, _ in verdicts if reason),
            "clean": collections.Counter(clean for _, clean in verdicts if clean)}


# --- what the DAG built ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bq(services):
    return bigquery_client()


@pytest.fixture(scope="module")
def bucket(export, services):
    client = storage_client()
    found = client.lookup_bucket(BUCKET) or client.create_bucket(BUCKET)
    found.blob(ecommerce.DATA_OBJECT).upload_from_string(export, content_type="text/csv")
    return found


def scalar(bq, sql: str):
    return list(bq.query(sql).result())[0][0]


def built(bq) -> dict:
    reasons = collections.Counter({r: n for r, n in bq.query(f"SELECT reject_reason, COUNT(*) FROM {ERRORS} "
                                                              "GROUP BY 1").result()})
    clean = collections.Counter(
        (r.invoice_no, r.stock_code, r.description, r.quantity, r.invoice_date.replace(tzinfo=None), r.unit_price,
         r.customer_id, r.country)
        for r in bq.query(f"SELECT * FROM {CLEAN}").result())
    return {"raw": scalar(bq, f"SELECT COUNT(*) FROM {RAW}"), "reasons": reasons, "clean": clean}


def task_states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


@pytest.fixture(scope="module")
def first_run(dagbag, bucket):
    return run_dag(dagbag.get_dag(DAG_ID))


def test_setup_ships_the_generated_export():
    assert samples.sample_objects()[ecommerce.DATA_OBJECT] == samples.retail_export_csv()
    assert samples.retail_export_csv() == samples.retail_export_csv()  # same bytes: setup leaves it unchanged


def test_the_sample_has_every_flaw(expected):
    assert set(expected["reasons"]) == set(ecommerce.REJECT_REASONS)
    assert sum(expected["clean"].values()) > expected["raw"] // 2


def test_clean_and_errors_equal_the_independent_verdict(first_run, bq, expected):
    assert first_run.state == "success", task_states(first_run)
    assert built(bq) == expected
    assert scalar(bq, f"SELECT COUNT(*) FROM {RAW}") == (scalar(bq, f"SELECT COUNT(*) FROM {CLEAN}")
                                                         + scalar(bq, f"SELECT COUNT(*) FROM {ERRORS}"))
    # the errors keep the raw strings: every rejected row of the file is there, as it was
    export_rows = collections.Counter(
        tuple(r.values()) for r in csv.DictReader(io.StringIO(samples.retail_export_csv().decode()))
        if verdict(r)[0])
    columns = ", ".join(ecommerce.EXPORT_COLUMNS)
    kept = collections.Counter(tuple(v or "" for v in row)
                               for row in bq.query(f"SELECT {columns} FROM {ERRORS}").result())
    assert kept == export_rows  # (an empty field loads as NULL)


def test_a_rerun_rebuilds_the_same_tables(first_run, dagbag, bq, expected):
    assert first_run.state == "success"
    run = run_dag(dagbag.get_dag(DAG_ID))
    assert run.state == "success", task_states(run)
    assert built(bq) == expected


def test_the_check_fails_at_once_saying_what_does_not_add_up(first_run, dagbag, bq, expected, capsys):
    assert first_run.state == "success"
    cancellations = expected["reasons"]["cancellation"]
    bq.query(f"CREATE OR REPLACE TABLE {ERRORS} AS SELECT * FROM {ERRORS} "
             "WHERE reject_reason != 'cancellation'").result()
    check_only = dagbag.get_dag(DAG_ID).partial_subset(task_ids=[CHECK], include_upstream=False)
    run = run_dag(check_only)
    assert run.state == "failed"
    ti = run.get_task_instance(CHECK)
    assert ti.state == "failed" and ti.try_number == 1  # no retries for a count that does not add up
    clean_n, error_n = sum(expected["clean"].values()), expected["raw"] - sum(expected["clean"].values())
    assert (f"raw.transactions_raw has {expected['raw']} rows, clean.transactions {clean_n} + "
            f"clean.transactions_errors {error_n - cancellations} = {expected['raw'] - cancellations}; "
            f"raw rows in neither table: {cancellations}") in capsys.readouterr().out

    run = run_dag(dagbag.get_dag(DAG_ID))  # a full run rebuilds what was tampered with
    assert run.state == "success" and built(bq) == expected


@pytest.mark.parametrize("problem", ["wrong header", "missing"])
def test_a_bad_export_fails_naming_it_and_leaves_the_tables(problem, first_run, dagbag, bucket, bq, expected,
                                                              export, capsys):
    assert first_run.state == "success"
    blob = bucket.blob(ecommerce.DATA_OBJECT)
    if problem == "missing":
        blob.delete()
        message = f"gs://{BUCKET}/data.csv does not exist"
    else:  # the same rows, Quantity and UnitPrice swapped in the header: would load into the wrong columns
        lines = export.decode().split("\n", 1)
        blob.upload_from_string(lines[0].replace("Quantity", "_").replace("UnitPrice", "Quantity")
                                .replace("_", "UnitPrice") + "\n" + lines[1])
        message = (f"gs://{BUCKET}/data.csv (generation {blob.generation}) is not the retail export: its header is "
                   "'InvoiceNo,StockCode,Description,UnitPrice,InvoiceDate,Quantity,CustomerID,Country'")
    try:
        run = run_dag(dagbag.get_dag(DAG_ID))
        assert run.state == "failed"
        states = task_states(run)
        assert states["check_export"] == "failed" and states["load_raw"] == "upstream_failed"
        assert run.get_task_instance("check_export").try_number == 1
        assert message in capsys.readouterr().out
        assert built(bq) == expected  # nothing loaded, nothing rebuilt
    finally:
        blob.upload_from_string(export, content_type="text/csv")


# What BigQuery itself gives for these strings (its SAFE_CAST refuses '6.0', '1e2' for INT64; its
# PARSE_DATETIME wants the whole string in the format). bqemulator's bare SAFE_CAST accepts more
# ('6.0' and '1e2' become 6 and 100): the DAG's expressions must give BigQuery's answers there too.
EDGE_CASES = {
    "quantity": {"6.0": None, "1e2": None, "0x10": None, "1,000": None, "99999999999999999999": None,
                 " 7 ": 7, "+3": 3, "-2": -2},
    "unit_price": {"1e2": None, "nan": None, "inf": None, "1,25": None, "": None,
                   "2.55": Decimal("2.55"), ".5": Decimal("0.5"), "-0.01": Decimal("-0.01")},
    "invoice_date": {"12/1/2010 8:26": dt.datetime(2010, 12, 1, 8, 26),
                     "12/01/2010 08:26": dt.datetime(2010, 12, 1, 8, 26),
                     "2010-12-01 08:26": None, "2/30/2011 8:26": None, "12/1/2010 8:26:00": None, "12/1/2010": None},
}


@pytest.mark.parametrize("column", sorted(EDGE_CASES))
def test_the_typed_columns_give_bigquerys_answers_on_the_emulator(bq, column):
    expression = next(expr for name, _, expr in ecommerce.CLEAN_COLUMNS if name == column)
    raw_column = next(c for c in ecommerce.EXPORT_COLUMNS if c in expression)
    values = " UNION ALL ".join(f"SELECT '{v}' AS {raw_column}" for v in EDGE_CASES[column])
    got = {row[0]: row[1] for row in bq.query(f"SELECT {raw_column}, {expression} FROM ({values})").result()}
    got = {k: v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v for k, v in got.items()}
    assert got == EDGE_CASES[column]
