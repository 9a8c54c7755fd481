"""event-file-ingest — every file uploaded under gs://<bucket>/landing/ into BigQuery `YellowCab.raw_data`
(walkthrough 3_5, Kestra namespace gcp.yellowcab).

Scheduled by an asset whose watcher pulls the bucket's notifications from Pub/Sub (`file-upload-sub`) in
the triggerer; each object generation loads once. A manual run loads param `object_name`, if any.
Project and bucket are fixed at parse time, from the environment form of the Variables.
Details: docs/walkthrough.md#event-driven-ingest-3_5
"""
from airflow.sdk import DAG, Param, task

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp.preflight import GcpPreflight
from include.zoomcamp.walkthrough import event_ingest
from include.zoomcamp.walkthrough.yellow_cab.tasks import load_file_task

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

    load_object = load_file_task(None, task_id="load_object")
    load_object.partial(project=PROJECT).expand(obj=collect_objects())
