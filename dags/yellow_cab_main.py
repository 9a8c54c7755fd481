"""yellow_cab_main — the yellow-cab files into BigQuery, then the quality subflow, then the archive
(walkthrough 3_3, Kestra namespace gcp.yellowcab).

Loads the Parquet files under `yellow-cab/` into `YellowCab.raw_data` (mapped, each object generation once),
triggers `yellow_cab_subflow` and waits for it, and only when it succeeds moves each loaded file to
`yellow-cab-archive/`. A file that does not load fails only itself, stays for a rerun, and fails the run.
Details: docs/walkthrough.md#yellow_cab_main-and-yellow_cab_subflow-3_3
"""
from airflow.providers.google.cloud.transfers.gcs_to_gcs import GCSToGCSOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TriggerRule, task

from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.operators import run_and_wait
from include.zoomcamp.walkthrough import YELLOW_CAB_TAGS, samples
from include.zoomcamp.walkthrough.yellow_cab.archive import archive_moves
from include.zoomcamp.walkthrough.yellow_cab.quality import SUBFLOW_DAG_ID
from include.zoomcamp.walkthrough.yellow_cab.tasks import create_tables_tasks, list_files_task, load_file_task

PREFIX = samples.YELLOW_PREFIX
FILES_AT_ONCE = 5

with DAG(
    dag_id="yellow_cab_main",
    schedule=None,
    max_active_runs=1,  # runs in turn; loads across DAGs take turns in the pool yellow_cab_raw_loads
    default_args=GCP_DEFAULT_ARGS,
    tags=YELLOW_CAB_TAGS,
    doc_md=__doc__,
):
    create_dataset, create_tables = create_tables_tasks(templates.PROJECT_ID, templates.LOCATION)
    list_files = list_files_task(PREFIX)
    load_file = load_file_task(FILES_AT_ONCE)

    # Runs once every load has finished and one at least succeeded: a broken file holds back only itself.
    @task(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
    def loaded_files(loads) -> list[dict]:
        moves = archive_moves(loads, PREFIX)
        print(f"{len(moves)} file(s) in BigQuery, to archive once {SUBFLOW_DAG_ID} succeeds: {moves}")
        return moves

    # Trigger the child and wait (deferred to the triggerer); a failed child run fails this task.
    run_subflow = run_and_wait(task_id="run_subflow", trigger_dag_id=SUBFLOW_DAG_ID)
    archive_file = GCSToGCSOperator.partial(
        task_id="archive_file",
        source_bucket=templates.BUCKET, destination_bucket=templates.BUCKET,
        move_object=True, exact_match=True,
        max_active_tis_per_dagrun=FILES_AT_ONCE,
        map_index_template="{{ task.source_object }}",
    )
    # A leaf that fails (upstream_failed) when a file did not load, so the run says so.
    all_files_loaded = EmptyOperator(task_id="all_files_loaded")

    files = list_files(templates.BUCKET)
    loads = load_file.partial(project=templates.PROJECT_ID).expand(obj=files)
    moves = loaded_files(loads)
    archived = archive_file.expand_kwargs(moves)

    create_tables >> files
    moves >> run_subflow >> archived
    loads >> all_files_loaded
