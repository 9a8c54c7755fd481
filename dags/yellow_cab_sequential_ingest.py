"""yellow_cab_sequential_ingest — every Parquet file under gs://<bucket>/yellow-cab/ into BigQuery
`YellowCab.raw_data`, one after another (walkthrough 3_2, Kestra namespace gcp.yellowcab).

Kestra's ForEach (concurrency 1) is a mapped task; each object generation loads once, also while other
DAGs load the same table (pool `yellow_cab_raw_loads`); a file BigQuery cannot read fails only itself.
Details: docs/walkthrough.md#yellow_cab_sequential_ingest-3_2
"""
from airflow.sdk import DAG

from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.walkthrough import YELLOW_CAB_TAGS, samples
from include.zoomcamp.walkthrough.yellow_cab.tasks import create_tables_tasks, list_files_task, load_file_task

PREFIX = samples.YELLOW_PREFIX
FILES_AT_ONCE = 1  # the walkthrough's sequential ForEach; 5 for its concurrent variant

with DAG(
    dag_id="yellow_cab_sequential_ingest",
    schedule=None,
    max_active_runs=1,  # runs in turn; loads across DAGs take turns in the pool yellow_cab_raw_loads
    default_args=GCP_DEFAULT_ARGS,
    tags=YELLOW_CAB_TAGS,
    doc_md=__doc__,
):
    create_dataset, create_tables = create_tables_tasks(templates.PROJECT_ID, templates.LOCATION)

    list_files = list_files_task(PREFIX)
    load_file = load_file_task(FILES_AT_ONCE)

    files = list_files(templates.BUCKET)
    loads = load_file.partial(project=templates.PROJECT_ID).expand(obj=files)

    create_tables >> files
