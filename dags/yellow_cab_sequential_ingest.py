"""yellow_cab_sequential_ingest — walkthrough 3_2: every Parquet file under gs://<bucket>/yellow-cab/
into BigQuery `YellowCab.raw_data`, one after another.

Kestra's ForEach over the listed files (concurrency 1) is dynamic task mapping here: `list_files`
lists the .parquet objects under `yellow-cab/` (with their generations), and `load_file` is mapped
over them with `max_active_tis_per_dagrun=1`, each mapped instance named after its object in the UI
(raise it to 5 for the walkthrough's "5 at a time" variant). `load_object` loads each object
generation once (`YellowCab.ingest_log`): a rerun loads nothing twice, and only new or replaced
files are loaded. That holds across DAGs too (3_3 loads the same files into the same table): every
load into raw_data takes the one slot of the pool `yellow_cab_raw_loads`, inserts nothing for a
generation already there, and stages in a table of its own task instance. A file BigQuery cannot
read (truncated, not Parquet) fails its own mapped instance, naming gs://bucket/object#generation,
with raw_data unchanged; the other files still load.

Dataset `YellowCab` and tables `raw_data`/`ingest_log` are created first when absent (the same tasks
as `event-file-ingest-setup`). Project, bucket and location come from Variables `GCP_PROJECT_ID`,
`GCP_BUCKET_NAME`, `GCP_LOCATION` (defaults: the local emulators), read at run time. Connection
`google_cloud_default`. `walkthrough_setup` uploads two sample files; on GCP upload TLC's own.
"""
from airflow.sdk import DAG

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.walkthrough import samples, yellow_cab

PREFIX = samples.YELLOW_PREFIX
FILES_AT_ONCE = 1  # the walkthrough's sequential ForEach; 5 for its concurrent variant

with DAG(
    dag_id="yellow_cab_sequential_ingest",
    schedule=None,
    max_active_runs=1,  # runs in turn; loads across DAGs take turns in the pool yellow_cab_raw_loads
    default_args=GCP_DEFAULT_ARGS,
    tags=[config.WALKTHROUGH_TAG, config.YELLOW_CAB_TAG],
    doc_md=__doc__,
):
    create_dataset, create_tables = yellow_cab.create_tables_tasks(templates.PROJECT_ID, templates.LOCATION)

    list_files = yellow_cab.list_files_task(PREFIX)
    load_file = yellow_cab.load_file_task(FILES_AT_ONCE)

    files = list_files(templates.BUCKET)
    loads = load_file.partial(project=templates.PROJECT_ID).expand(obj=files)

    create_tables >> files
