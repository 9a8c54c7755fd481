"""event-file-ingest — walkthrough 3_5: every file uploaded under gs://<bucket>/landing/ into BigQuery.

No schedule but an asset: `gs://<bucket>/landing/`, whose AssetWatcher runs the google provider's
`PubsubPullTrigger` on subscription `file-upload-sub` in the triggerer (fed by the bucket's
notification; `event-file-ingest-setup` creates it all). Each pulled batch of messages becomes one
asset event, and Airflow may fold several events into one run: `collect_objects` reads all of
them, keeps OBJECT_FINALIZE messages for .parquet/.csv objects under landing/ of the watched bucket
(others are logged and skipped; another bucket's are refused with a warning naming it), each
(bucket, object, generation) once; `load_object` (one mapped task per object, in the pool
`yellow_cab_raw_loads`) loads it into `YellowCab.raw_data` unless that generation is already there
(Pub/Sub delivers at least once). A file BigQuery cannot read fails its task, naming
gs://bucket/object#generation, with raw_data unchanged; clear the failed task (or the run) to
retry: the run keeps its events. An upload whose event never became a run (the trigger acks before
Airflow stores the event) is loaded by `event-file-ingest-reconcile`, hourly or when triggered.

A manual run has no events: it logs the `manual-run` defaults and loads the object named in param
`object_name` (e.g. `landing/yellow_tripdata_2024-01.parquet`), if any. Runs go one at a time.

Project and bucket are fixed when the file is parsed — the watcher's trigger and the asset's URI are
built then, where Variables must not be read: from the environment form of the Variables
(`AIRFLOW_VAR_GCP_PROJECT_ID`, `AIRFLOW_VAR_GCP_BUCKET_NAME`; `make run GCP=real` sets them from
zoomcamp.env), else the emulators' defaults. Each task first checks that the Variables the other DAGs
read still say the same, and fails naming both when not (docs/gcp.md). Connection `google_cloud_default`.
"""
from airflow.sdk import DAG, Param, task

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp.preflight import GcpPreflight
from include.zoomcamp.walkthrough import event_ingest, yellow_cab

PROJECT = event_ingest.watched_project()
LANDING = event_ingest.landing_asset()
PARSED = {config.GCP_PROJECT_ID_VAR: PROJECT, config.GCP_BUCKET_NAME_VAR: event_ingest.watched_bucket()}

with DAG(
    dag_id="event-file-ingest",
    schedule=[LANDING],
    max_active_runs=1,  # runs in turn; loads across DAGs take turns in the pool yellow_cab_raw_loads
    params={"object_name": Param("", type="string",
                                 description="Manual runs only: an object under landing/ to load, e.g. "
                                             "landing/yellow_tripdata_2024-01.parquet")},
    default_args={**GCP_DEFAULT_ARGS, "pre_execute": GcpPreflight(watched=PARSED)},
    tags=[config.TAG, config.WALKTHROUGH_TAG, config.YELLOW_CAB_TAG],
    doc_md=__doc__,
):
    @task
    def collect_objects(params=None, triggering_asset_events=None) -> list[dict]:
        events = [event for events in (triggering_asset_events or {}).values() for event in events]
        if not events:
            return event_ingest.manual_object(params["object_name"])
        objects, skipped = event_ingest.objects_to_load(events)
        refused = [s for s in skipped if s["reason"].startswith("refused")]
        print(f"{len(events)} event(s): {len(objects)} object(s) to load, {len(skipped)} skipped "
              f"({len(refused)} refused: another bucket)")
        return objects

    load_object = yellow_cab.load_file_task(None, task_id="load_object")
    load_object.partial(project=PROJECT).expand(obj=collect_objects())
