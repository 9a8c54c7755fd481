"""Walkthrough 2_1, Python side: files shared between tasks through Airflow's object storage, and
project files (Kestra's namespace files) shipped under include/walkthrough_files/.

A task never hands a local path to another task: another worker (or the user) cannot see it. It
writes through an ObjectStoragePath under the base in Variable `walkthrough_storage_base`
(`file://<data dir>/walkthrough-files` by default, `gs://<bucket>/<prefix>` on GCP) and returns
that ObjectStoragePath, which the next task receives through XCom and reads.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from include.zoomcamp import config, storage, templates
from include.zoomcamp.errors import PermanentError

log = logging.getLogger(__name__)

# The isolated environment pins the pandas the project pins (requirements.txt): the installer's cache has it.
PANDAS_REQUIREMENT = f"pandas=={version('pandas')}"
PROJECT_FILES = config.PROJECT_ROOT / "include" / "walkthrough_files"
SALES_CSV = PROJECT_FILES / "sales_data.csv"
SALES_SCRIPT = PROJECT_FILES / "process_sales_data.py"


class SharedFileMissing(PermanentError):
    """The file an earlier task of the run writes is not there: that task has not run for this run."""


class SalesScriptFailed(PermanentError):
    """The project file process_sales_data.py failed on the project's sales_data.csv: a retry runs the same."""


def default_storage_base() -> str:
    return config.storage_url("walkthrough-files")


def storage_base() -> str:
    """Where the Python DAGs write their files: Variable `walkthrough_storage_base`, read at run time
    (a template; its default follows the data dir the DAG file was parsed with)."""
    return templates.variable(config.WALKTHROUGH_STORAGE_BASE_VAR, default_storage_base())


def venv_cache() -> str:
    """Where @task.virtualenv keeps its environments: built once per requirements, then reused."""
    return str(config.data_dir() / "venvs")


def storage_path(base: str, dag_id: str, run_id: str, name: str):
    """<base>/<dag_id>/<run_id>/<name> as an ObjectStoragePath (gs:// paths read through GCP_CONN_ID)."""
    if "://" not in base:
        raise storage.StorageLocationError(f"Variable {config.WALKTHROUGH_STORAGE_BASE_VAR} = {base!r} is not a "
                                           "URL (file:///path or gs://bucket/prefix)")
    return storage.path(base, dag_id, run_id, name, variable=config.WALKTHROUGH_STORAGE_BASE_VAR)


def write_text(path, text: str):
    """Write `text` to `path` (an ObjectStoragePath) in one piece and return the path."""
    return storage.write_text(path, text)


def read_csv(path):
    """The CSV at `path` (an ObjectStoragePath from an earlier task) as a pandas DataFrame."""
    import pandas as pd

    if not path.exists():
        raise SharedFileMissing(f"{path} does not exist: the task that writes it has not run for this run")
    with path.open("r") as f:
        return pd.read_csv(f)


def run_sales_script(target):
    """Run the project file process_sales_data.py over sales_data.csv, as Kestra runs a namespace
    file (`python process_sales_data.py`) in a scratch directory, and store its summary at `target`."""
    with tempfile.TemporaryDirectory(prefix="zoomcamp-sales-") as workdir:
        for project_file in (SALES_SCRIPT, SALES_CSV):
            shutil.copy(project_file, workdir)
        done = subprocess.run([sys.executable, SALES_SCRIPT.name, SALES_CSV.name, "summary.csv"],
                              cwd=workdir, capture_output=True, text=True, timeout=300)
        for line in done.stdout.splitlines():
            log.info("%s", line)
        if done.returncode != 0:
            raise SalesScriptFailed(f"{SALES_SCRIPT.name} exited with {done.returncode}: {done.stderr.strip()}")
        return write_text(target, (Path(workdir) / "summary.csv").read_text())


ORDER_PRODUCTS = (("Laptop", 1199.0), ("Monitor", 229.5), ("Keyboard", 45.9), ("Mouse", 19.99))


def generate_orders(count: int = 40) -> str:
    """python-multistep's step 1 data: `count` orders (order_id,product,quantity,unit_price) as CSV text."""
    lines = ["order_id,product,quantity,unit_price"]
    for order_id in range(1, count + 1):
        product, price = ORDER_PRODUCTS[(order_id * 7) % len(ORDER_PRODUCTS)]
        lines.append(f"{order_id},{product},{order_id % 5 + 1},{price}")
    return "\n".join(lines) + "\n"


def revenue_by_product(path) -> dict:
    """python-multistep's step 2: the orders CSV at `path`, summarised (orders, units, revenue per product)."""
    orders = read_csv(path)
    orders["revenue"] = orders["quantity"] * orders["unit_price"]
    per_product = orders.groupby("product").agg(orders=("order_id", "count"), units=("quantity", "sum"),
                                                revenue=("revenue", "sum"))
    summary = {
        "orders": int(len(orders)),
        "total_revenue": round(float(orders["revenue"].sum()), 2),
        "products": {name: {"orders": int(row.orders), "units": int(row.units), "revenue": round(float(row.revenue), 2)}
                     for name, row in per_product.iterrows()},
    }
    log.info("Read %s: %s", path, summary)
    return summary
