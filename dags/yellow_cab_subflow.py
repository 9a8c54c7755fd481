"""yellow_cab_subflow and yellow_cab_main — walkthrough 3_3 (Kestra namespace gcp.yellowcab).

`yellow_cab_subflow` (the child): loads `gs://<bucket>/taxi_zone_lookup.csv` into
`YellowCab.taxi_zone_lookup` (replaced), builds `YellowCab.trips_enriched` (every trip of
`raw_data` with its duration and pickup/drop-off borough, zone and service zone), then in parallel
the four detections `suspicious_trips`, `short_trips`, `long_trips`, `invalid_location_trips` and
the aggregations `trips_by_borough`, `trips_by_hour`, then `trips_curated` (the enriched trips no
detection flags). The rules are named constants in include/zoomcamp/walkthrough/yellow_cab_quality.py,
which writes each table's `CREATE OR REPLACE TABLE … AS SELECT`: a rerun rebuilds every table.

`yellow_cab_main`: lists the Parquet files under `yellow-cab/` and loads them into
`YellowCab.raw_data` (Kestra's ForEach: dynamic task mapping, at most 5 at once per run, and as many
as the pool `yellow_cab_raw_loads` allows: 1, shared with every DAG loading raw_data), each object
generation once, even while 3_2 loads the same files (the loader of 3_2); then triggers
`yellow_cab_subflow` and waits for it in the triggerer (Kestra's Subflow with `wait`), failing when
it fails; only then moves each loaded file to `yellow-cab-archive/` (same path below it). A file
that does not load (truncated, not Parquet) fails its own `load_file` instance, naming it, and
stays under `yellow-cab/` for a rerun; the other files go on through the subflow to the archive,
and `all_files_loaded` fails the run.
When the subflow fails nothing is archived: the rerun finds the files already loaded and tries again.

Variables `GCP_PROJECT_ID`, `GCP_BUCKET_NAME`, `GCP_LOCATION` (defaults: the local emulators),
connection `google_cloud_default`. `walkthrough_setup` uploads samples; on GCP upload TLC's files.
"""
from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator
from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator
from airflow.providers.google.cloud.transfers.gcs_to_gcs import GCSToGCSOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TriggerRule, task

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.gcp.errors import GcpRetryPolicy
from include.zoomcamp.walkthrough import samples, subflows, yellow_cab
from include.zoomcamp.walkthrough import yellow_cab_quality as quality

SUBFLOW_DAG_ID = "yellow_cab_subflow"
PREFIX = samples.YELLOW_PREFIX
ARCHIVE_PREFIX = yellow_cab.ARCHIVE_PREFIX
ZONES_OBJECT = samples.ZONES_OBJECT
FILES_AT_ONCE = 5
DATASET = config.YELLOW_CAB_DATASET
TAGS = [config.WALKTHROUGH_TAG, config.YELLOW_CAB_TAG]

with DAG(
    dag_id=SUBFLOW_DAG_ID,
    schedule=None,
    max_active_runs=1,  # two runs would replace the same tables at once
    default_args={**GCP_DEFAULT_ARGS, "retry_policy": GcpRetryPolicy(then=quality.FAIL_WHEN_BIGQUERY_REFUSES)},
    tags=TAGS,
    doc_md=__doc__,
):
    load_zone_lookup = GCSToBigQueryOperator(
        task_id="load_zone_lookup",
        bucket=templates.BUCKET, source_objects=[ZONES_OBJECT],
        destination_project_dataset_table=f"{templates.PROJECT_ID}.{DATASET}.{quality.ZONES_TABLE}",
        schema_fields=list(quality.ZONE_SCHEMA), source_format="CSV", skip_leading_rows=1, max_bad_records=0,
        write_disposition="WRITE_TRUNCATE", create_disposition="CREATE_IF_NEEDED", autodetect=False,
        project_id=templates.PROJECT_ID,
    )
    trips_enriched = BigQueryInsertJobOperator(
        task_id=quality.ENRICHED_TABLE,
        configuration=quality.query_job(quality.enriched_sql(templates.PROJECT_ID)),
        project_id=templates.PROJECT_ID,
    )
    detections = [
        BigQueryInsertJobOperator(
            task_id=name, configuration=quality.query_job(quality.detection_sql(name, templates.PROJECT_ID)),
            project_id=templates.PROJECT_ID,
        )
        for name in quality.DETECTIONS
    ]
    aggregations = [
        BigQueryInsertJobOperator(
            task_id=name, configuration=quality.query_job(quality.aggregation_sql(name, templates.PROJECT_ID)),
            project_id=templates.PROJECT_ID,
        )
        for name in quality.AGGREGATIONS
    ]
    trips_curated = BigQueryInsertJobOperator(
        task_id=quality.CURATED_TABLE,
        configuration=quality.query_job(quality.curated_sql(templates.PROJECT_ID)),
        project_id=templates.PROJECT_ID,
    )

    load_zone_lookup >> trips_enriched >> [*detections, *aggregations] >> trips_curated


with DAG(
    dag_id="yellow_cab_main",
    schedule=None,
    max_active_runs=1,  # runs in turn; loads across DAGs take turns in the pool yellow_cab_raw_loads
    default_args=GCP_DEFAULT_ARGS,
    tags=TAGS,
    doc_md=__doc__,
):
    create_dataset, create_tables = yellow_cab.create_tables_tasks(templates.PROJECT_ID, templates.LOCATION)
    list_files = yellow_cab.list_files_task(PREFIX)
    load_file = yellow_cab.load_file_task(FILES_AT_ONCE)

    # Runs once every load has finished and one at least succeeded: a broken file holds back only itself.
    @task(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
    def loaded_files(loads) -> list[dict]:
        moves = yellow_cab.archive_moves(loads, PREFIX)
        print(f"{len(moves)} file(s) in BigQuery, to archive once {SUBFLOW_DAG_ID} succeeds: {moves}")
        return moves

    # Trigger the child and wait (deferred to the triggerer); a failed child run fails this task.
    run_subflow = subflows.run_and_wait(task_id="run_subflow", trigger_dag_id=SUBFLOW_DAG_ID)
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
