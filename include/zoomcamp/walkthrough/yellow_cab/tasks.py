"""The tasks the yellow-cab DAGs build: the dataset and its tables, the listing of the files, the load of a file.

Dataset and both tables are created by `create_tables_tasks` (used by `event-file-ingest-setup`,
`yellow_cab_sequential_ingest` and `yellow_cab_main`); the last two list and load with the tasks
`list_files_task` and `load_file_task` make: bqemulator 1.1.0 can load Parquet into an existing table only.
"""
from __future__ import annotations

from include.zoomcamp import config
from include.zoomcamp.walkthrough.yellow_cab.files import list_data_objects
from include.zoomcamp.walkthrough.yellow_cab.loader import LoadRun, load_object
from include.zoomcamp.walkthrough.yellow_cab.tables import (
    INGEST_LOG_TABLE,
    RAW_TABLE,
    ingest_log_resource,
    raw_table_resource,
)


def dataset_and_tables_tasks(project: str, location: str, dataset: str, tables: tuple[tuple[str, str, dict], ...]):
    """In the DAG being defined: task `create_dataset` >> one task per (task_id, table_id, resource),
    each succeeding when its resource exists (project/location may be templates). Returns (first, last tasks)."""
    from airflow.providers.google.cloud.operators.bigquery import (
        BigQueryCreateEmptyDatasetOperator,
        BigQueryCreateTableOperator,
    )

    create_dataset = BigQueryCreateEmptyDatasetOperator(
        task_id="create_dataset", dataset_id=dataset, project_id=project, location=location, if_exists="ignore",
    )
    created = [
        BigQueryCreateTableOperator(
            task_id=task_id, project_id=project, dataset_id=dataset, table_id=table_id,
            table_resource=resource, if_exists="ignore",
        )
        for task_id, table_id, resource in tables
    ]
    create_dataset >> created
    return create_dataset, created


def create_tables_tasks(project: str, location: str, dataset: str = config.YELLOW_CAB_DATASET):
    """`create_dataset` >> [`create_raw_table`, `create_ingest_log`]: what the yellow-cab ingests write."""
    return dataset_and_tables_tasks(project, location, dataset, (
        ("create_raw_table", RAW_TABLE, raw_table_resource()),
        ("create_ingest_log", INGEST_LOG_TABLE, ingest_log_resource()),
    ))


def list_files_task(prefix: str):
    """The `list_files` task of the ingest DAGs: `list_data_objects` under `prefix`, logged."""
    from airflow.sdk import task

    @task(task_id="list_files")
    def list_files(bucket: str) -> list[dict]:
        objects = list_data_objects(bucket, prefix)
        print(f"{len(objects)} Parquet file(s) under gs://{bucket}/{prefix}: {[o['object_name'] for o in objects]}")
        return objects

    return list_files


def load_file_task(files_at_once: int | None, task_id: str = "load_file", event_type: str = "list"):
    """The loading task of every DAG writing raw_data, to be mapped over objects (`{"bucket", "object_name",
    "generation"}`, and an `event_type` for ingest_log, else `event_type`): `load_object` for one object, in
    the pool `yellow_cab_raw_loads`, at most `files_at_once` at a time per run (None: no cap of its own),
    each mapped instance named after its object. A file BigQuery cannot read fails its instance at once
    (ObjectLoadError naming it, failed by the error policy). Returns the object with `load_object`'s answer."""
    from airflow.sdk import get_current_context, task

    @task(task_id=task_id, map_index_template="{{ object_name }}", max_active_tis_per_dagrun=files_at_once,
          pool=config.YELLOW_CAB_RAW_LOAD_POOL)
    def load_file(obj: dict, project: str) -> dict:
        context = get_current_context()
        context["object_name"] = obj["object_name"]  # names the mapped instance in the UI
        ti = context["ti"]
        result = load_object(obj["bucket"], obj["object_name"], obj["generation"], project=project,
                             event_type=obj.get("event_type") or event_type,
                             load=LoadRun(ti.dag_id, ti.run_id, ti.map_index))
        return {**obj, **result}

    return load_file
