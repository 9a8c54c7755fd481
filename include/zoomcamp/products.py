"""Flow 03's steps: download the products document, keep columns, average price per brand in DuckDB."""
from __future__ import annotations

import logging

from include.zoomcamp import config, storage
from include.zoomcamp.errors import PermanentError

log = logging.getLogger(__name__)

AVG_PRICE_SQL = """
SELECT brand, round(avg(price), 2) AS avg_price
FROM products
GROUP BY brand
ORDER BY avg_price DESC
"""


class MissingColumns(PermanentError, ValueError):
    """The kept columns lack one the query needs: a retry with the same params would fail again."""


def download_products(url: str) -> list[dict]:
    import requests

    response = requests.get(url, timeout=30)
    response.raise_for_status()
    document = response.json()
    if not isinstance(document, dict) or not isinstance(document.get("products"), list):
        raise ValueError(f"{url} did not return a JSON object with a 'products' list")
    return document["products"]


def keep_columns(products: list[dict], columns: list[str]) -> list[dict]:
    return [{column: product.get(column, "N/A") for column in columns} for product in products]


def average_price_by_brand(rows: list[dict], results_dir: str, run_id: str) -> dict:
    """Run the course's query; keep the result as a CSV file (local or object storage) and return it."""
    import duckdb
    import pandas as pd

    missing = {"brand", "price"} - set(rows[0] if rows else {})
    if missing:
        raise MissingColumns(f"The average-price query needs columns brand and price; missing: {sorted(missing)}")
    frame = pd.DataFrame(rows)
    frame["price"] = pd.to_numeric(frame["price"], errors="coerce")
    with duckdb.connect() as con:
        con.register("products", frame)
        result = con.sql(AVG_PRICE_SQL).df()
    location = storage.path(results_dir, "03_getting_started_data_pipeline", run_id, "avg_price_by_brand.csv",
                            variable=config.RESULTS_DIR_VAR)
    storage.write_text(location, result.to_csv(index=False))
    log.info("Average price per brand (%s):\n%s", location, result.to_string(index=False))
    records = result.astype(object).where(result.notna(), None).to_dict("records")
    return {"file": storage.shown(location), "rows": records}
