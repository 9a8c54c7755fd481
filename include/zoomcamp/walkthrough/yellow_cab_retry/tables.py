"""The tables of dataset `yc_retry`: `trips_clean` (typed trips) and `trips_rejected` (rows the safe-cast
fallback could not keep), their BigQuery table resources and the tasks that create them.
"""
from __future__ import annotations

from include.zoomcamp import config
from include.zoomcamp.walkthrough.yellow_cab.tables import SOURCE_COLUMNS, YELLOW_COLUMNS
from include.zoomcamp.walkthrough.yellow_cab.tasks import dataset_and_tables_tasks

DATASET = config.YC_RETRY_DATASET
CLEAN_TABLE = "trips_clean"
REJECTED_TABLE = "trips_rejected"
CLEANING_COLUMN = ("cleaning", "STRING", "strict or safe_cast: which insert wrote the row")
REJECT_REASON_COLUMN = ("reject_reason", "STRING", "required fields empty or unparsable")


def clean_table_resource() -> dict:
    fields = [{"name": n, "type": t, "mode": "NULLABLE"} for n, t in YELLOW_COLUMNS]
    fields += [{"name": n, "type": t, "mode": "NULLABLE", "description": d}
               for n, t, d in (*SOURCE_COLUMNS, CLEANING_COLUMN)]
    return {"schema": {"fields": fields}, "description": "Typed yellow-cab trips from yc-retry/data/ CSV files"}


def rejected_table_resource() -> dict:
    fields = [{"name": n, "type": "STRING", "mode": "NULLABLE"} for n, _ in YELLOW_COLUMNS]
    fields += [{"name": n, "type": t, "mode": "NULLABLE", "description": d}
               for n, t, d in (*SOURCE_COLUMNS, REJECT_REASON_COLUMN)]
    return {"schema": {"fields": fields},
            "description": "Rows the safe-cast fallback could not keep, as read, with the reason"}


def create_tables_tasks(project: str, location: str):
    """In the DAG being defined: `create_dataset` >> [`create_clean_table`, `create_rejected_table`],
    each succeeding when its resource exists. Returns (first task, last tasks)."""
    return dataset_and_tables_tasks(project, location, DATASET, (
        ("create_clean_table", CLEAN_TABLE, clean_table_resource()),
        ("create_rejected_table", REJECTED_TABLE, rejected_table_resource()),
    ))


def bigquery_client(project: str, conn_id: str):
    """The BigQuery client of the DAGs' connection, for `project`."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    return BigQueryHook(gcp_conn_id=conn_id, use_legacy_sql=False).get_client(project_id=project)
