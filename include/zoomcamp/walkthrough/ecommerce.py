"""Walkthrough 3_1: a retail transactions export from GCS into BigQuery, cleaned, every row accounted for.

`gs://<bucket>/data.csv` (the "Online Retail" export: InvoiceNo, StockCode, Description, Quantity,
InvoiceDate, UnitPrice, CustomerID, Country) → `raw.transactions_raw` (every column STRING, as in
the file) → `clean.transactions` (typed) and `clean.transactions_errors` (the raw strings plus
`reject_reason`).

The reject rules live here and only here (`REJECT_RULES`): both tables are selected from the same
judged rows — `reject_reason` is the first rule a row matches, in the order below, NULL when none
does — so a row lands in exactly one of them. Every rule is NULL-safe: a row whose value cannot be
parsed is rejected for that, before the rules that would compare the value.

Both tables carry `raw_row_hash` (MD5 of the row's eight raw strings), so `reconciliation_sql`
can check raw = clean + errors row for row: for every distinct raw row, its copies in raw equal its
copies in clean plus errors (identical raw rows — the real export has some — share a hash and a verdict).

The SQL works the same on BigQuery and on bqemulator 1.1.0 (DuckDB under BigQuery's API), which
differ in what SAFE_CAST accepts ('6.0' and '1e2' cast to INT64 on the emulator only), so numbers
are matched by a regular expression first; the emulator types PARSE_DATETIME's column TIMESTAMP
(same wall-clock value) and keeps NUMERIC to 3 decimals (the export has at most 3).
"""
from __future__ import annotations

import logging

from include.zoomcamp import config, sql
from include.zoomcamp.errors import PermanentError
from include.zoomcamp.gcp.bigquery import table_ref

log = logging.getLogger(__name__)

DATA_OBJECT = "data.csv"
RAW_DATASET = "raw"
RAW_TABLE = "transactions_raw"
CLEAN_DATASET = "clean"
CLEAN_TABLE = "transactions"
ERRORS_TABLE = "transactions_errors"

# The export's header, in order; raw keeps these names, every column STRING.
EXPORT_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
                  "Country")
# The export's InvoiceDate: month/day/year hour:minute, UK local time, no zone (`12/1/2010 8:26`).
INVOICE_DATE_FORMAT = "%m/%d/%Y %H:%M"
CANCELLATION_PREFIX = "C"
INTEGER_PATTERN = r"^[+-]?[0-9]+$"
DECIMAL_PATTERN = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)$"

# clean.transactions: (column, type, expression over the raw row). Trimmed; empty strings are NULL.
CLEAN_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("invoice_no", "STRING", "NULLIF(TRIM(InvoiceNo), '')"),
    ("stock_code", "STRING", "NULLIF(TRIM(StockCode), '')"),
    ("description", "STRING", "NULLIF(TRIM(Description), '')"),
    ("quantity", "INT64",
     f"IF(REGEXP_CONTAINS(TRIM(Quantity), r'{INTEGER_PATTERN}'), SAFE_CAST(TRIM(Quantity) AS INT64), NULL)"),
    ("invoice_date", "DATETIME", f"SAFE.PARSE_DATETIME('{INVOICE_DATE_FORMAT}', TRIM(InvoiceDate))"),
    ("unit_price", "NUMERIC",
     f"IF(REGEXP_CONTAINS(TRIM(UnitPrice), r'{DECIMAL_PATTERN}'), SAFE_CAST(TRIM(UnitPrice) AS NUMERIC), NULL)"),
    ("customer_id", "STRING", "NULLIF(TRIM(CustomerID), '')"),
    ("country", "STRING", "NULLIF(TRIM(Country), '')"),
)

# reject_reason values, and the rules in the order they are tried (over the typed values above).
MISSING_INVOICE_NO = "missing_invoice_no"
CANCELLATION = "cancellation"
UNPARSABLE_QUANTITY = "unparsable_quantity"
UNPARSABLE_UNIT_PRICE = "unparsable_unit_price"
UNPARSABLE_INVOICE_DATE = "unparsable_invoice_date"
QUANTITY_NOT_POSITIVE = "quantity_not_positive"
UNIT_PRICE_NOT_POSITIVE = "unit_price_not_positive"
MISSING_CUSTOMER = "missing_customer"
REJECT_RULES: tuple[tuple[str, str], ...] = (
    (MISSING_INVOICE_NO, "invoice_no IS NULL"),
    (CANCELLATION, f"STARTS_WITH(UPPER(invoice_no), '{CANCELLATION_PREFIX}')"),
    (UNPARSABLE_QUANTITY, "quantity IS NULL"),
    (UNPARSABLE_UNIT_PRICE, "unit_price IS NULL"),
    (UNPARSABLE_INVOICE_DATE, "invoice_date IS NULL"),
    (QUANTITY_NOT_POSITIVE, "quantity <= 0"),
    (UNIT_PRICE_NOT_POSITIVE, "unit_price <= 0"),
    (MISSING_CUSTOMER, "customer_id IS NULL"),
)
REJECT_REASONS = tuple(reason for reason, _ in REJECT_RULES)

HASH_COLUMN = ("raw_row_hash", "STRING", "MD5 (hex) of the row's eight strings in raw.transactions_raw")
REASON_COLUMN = ("reject_reason", "STRING", "the first reject rule the row matched")


class ExportError(PermanentError):
    """data.csv is missing, empty or not the retail export: a retry will not help."""


def raw_schema_fields() -> list[dict]:
    """raw.transactions_raw's schema: the export's columns, all STRING (nothing is lost in the load)."""
    return [{"name": name, "type": "STRING", "mode": "NULLABLE"} for name in EXPORT_COLUMNS]


def raw_row_hash() -> str:
    """The hash of a raw row, the same expression wherever a raw row is fingerprinted."""
    return f"TO_HEX(MD5(TO_JSON_STRING(STRUCT({', '.join(EXPORT_COLUMNS)}))))"


def reject_reason_expression() -> str:
    whens = "\n".join(f"    WHEN {condition} THEN '{reason}'" for reason, condition in REJECT_RULES)
    return f"CASE\n{whens}\n    ELSE NULL\n  END"


def _tables(project: str) -> dict[str, str]:
    return {"raw_table": table_ref(project, RAW_DATASET, RAW_TABLE),
            "clean_table": table_ref(project, CLEAN_DATASET, CLEAN_TABLE),
            "errors_table": table_ref(project, CLEAN_DATASET, ERRORS_TABLE)}


def _judged_rows(project: str) -> str:
    """Every raw row: its strings (as `raw_<Column>`), its hash, its typed values and its reject_reason.

    The raw strings are renamed: BigQuery names are case-insensitive, so the raw `Quantity` would
    clash with the typed `quantity` the rules read."""
    return sql.render(
        __file__, "ecommerce_judged_rows",
        raw_columns=", ".join(f"{name} AS raw_{name}" for name in EXPORT_COLUMNS),
        raw_row_hash=raw_row_hash(),
        typed_columns=",\n    ".join(f"{expr} AS {name}" for name, _, expr in CLEAN_COLUMNS),
        raw_table=_tables(project)["raw_table"],
        reject_reason=reject_reason_expression())


def clean_table_sql(project: str) -> str:
    """CREATE OR REPLACE clean.transactions: the typed rows no rule rejected."""
    return sql.render(__file__, "ecommerce_clean_table", clean_table=_tables(project)["clean_table"],
                      judged_rows=_judged_rows(project), columns=", ".join(name for name, _, _ in CLEAN_COLUMNS))


def errors_table_sql(project: str) -> str:
    """CREATE OR REPLACE clean.transactions_errors: every rejected row as it was in raw, with its reason."""
    return sql.render(__file__, "ecommerce_errors_table", errors_table=_tables(project)["errors_table"],
                      judged_rows=_judged_rows(project),
                      columns=", ".join(f"raw_{name} AS {name}" for name in EXPORT_COLUMNS))


def reconciliation_sql(project: str) -> str:
    """One row (ok, explanation): raw = clean + errors, row for row.

    For every distinct raw row (by hash) its copies in raw must equal its copies in clean plus
    errors; `ok` is false when row counts differ, a raw row is in neither table, a row is in a
    table without being in raw (or more often than in raw), or one raw row is in both tables."""
    return sql.render(__file__, "ecommerce_reconciliation", **_tables(project), raw_row_hash=raw_row_hash(),
                      raw_name=f"{RAW_DATASET}.{RAW_TABLE}", clean_name=f"{CLEAN_DATASET}.{CLEAN_TABLE}",
                      errors_name=f"{CLEAN_DATASET}.{ERRORS_TABLE}")


def reasons_summary_sql(project: str) -> str:
    return sql.render(__file__, "ecommerce_rejects_summary", errors_table=_tables(project)["errors_table"])


def check_export(bucket: str, object_name: str = DATA_OBJECT, conn_id: str = config.GCP_CONN_ID) -> dict:
    """The object exists and its header is the export's; returns {"uri", "generation", "bytes"}.

    Reads the first line only (a ranged read). BigQuery's load skips the header without looking at
    it, so a file with other or reordered columns would load into the wrong columns: refuse it here."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from google.api_core import exceptions

    uri = f"gs://{bucket}/{object_name}"
    try:
        blob = GCSHook(gcp_conn_id=conn_id).get_conn().bucket(bucket).get_blob(object_name)
    except exceptions.NotFound:
        raise ExportError(f"{uri}: bucket {bucket!r} does not exist (run walkthrough_setup, or set Variable "
                          f"{config.GCP_BUCKET_NAME_VAR})") from None
    if blob is None:
        raise ExportError(f"{uri} does not exist: upload the retail export there (walkthrough_setup uploads a "
                          "generated sample)")
    generation, size = blob.generation, blob.size  # before reading: the reader reloads the blob without them
    with blob.open("rb") as fh:
        first_line = fh.readline(64 * 1024)
    header = first_line.decode("utf-8-sig", errors="replace").strip()
    if not header:
        raise ExportError(f"{uri} (generation {generation}) is empty: expected the header "
                          f"{','.join(EXPORT_COLUMNS)}")
    names = [name.strip().strip('"') for name in header.split(",")]
    if tuple(names) != EXPORT_COLUMNS:
        missing = [c for c in EXPORT_COLUMNS if c not in names]
        unexpected = [c for c in names if c not in EXPORT_COLUMNS]
        detail = (f"missing {missing}, unexpected {unexpected}" if missing or unexpected
                  else "the same columns in another order")
        raise ExportError(f"{uri} (generation {generation}) is not the retail export: its header is "
                          f"{','.join(names)!r}, expected {','.join(EXPORT_COLUMNS)!r} ({detail})")
    log.info("%s (generation %s, %s bytes): header %s", uri, generation, size, header)
    return {"uri": uri, "generation": int(generation), "bytes": size}


class ReconciliationError(PermanentError):
    """raw ≠ clean + errors: the SQL is wrong or the tables were changed meanwhile; a retry will not help."""


def reconcile(project: str, conn_id: str = config.GCP_CONN_ID) -> dict:
    """Run `reconciliation_sql`; return {"explanation", "rejects": {reason: rows}} or raise
    ReconciliationError with the explanation.

    Through the BigQuery client (BigQueryHook.get_client), not BigQueryCheckOperator: that operator's
    synchronous path uses the discovery-based DB-API client, which goes to bigquery.googleapis.com
    whatever BIGQUERY_EMULATOR_HOST says, so it could not run on the emulator."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    client = BigQueryHook(gcp_conn_id=conn_id, use_legacy_sql=False).get_client(project_id=project)
    ok, explanation = list(client.query(reconciliation_sql(project)).result())[0]
    if not ok:
        raise ReconciliationError(f"raw != clean + errors: {explanation}")
    rejects = {reason: n for reason, n in client.query(reasons_summary_sql(project)).result()}
    log.info("%s; rejected rows by reason: %s", explanation, rejects)
    return {"explanation": explanation, "rejects": rejects}
