"""event-file-ingest-reconcile — walkthrough 3_5's safety net: what reached gs://<bucket>/landing/ without
being loaded is loaded now. Hourly, and whenever triggered (e.g. after the Pub/Sub emulator or the
triggerer was down).

`event-file-ingest` loads an upload when its notification becomes a run, and that can fail to happen:
the trigger acks a pulled batch before Airflow stores it as an asset event (a triggerer stopped in
between loses the batch), a notification whose publish failed is not sent again, and a missing topic
drops every notification. `list_unloaded` lists the .parquet/.csv objects under landing/ and keeps
each one whose live generation `YellowCab.ingest_log` does not record; `load_object` (mapped, one per
object, in the pool `yellow_cab_raw_loads` with every other load into raw_data) loads it with the
loader of `event-file-ingest`, which skips a generation loaded meanwhile. A second run finds nothing
to load: running it changes nothing once everything is loaded. A file BigQuery cannot read fails its
instance, naming it, at each run until it is replaced or deleted.

Project and bucket are those `event-file-ingest` watches (fixed when the file is parsed, as there);
the tables come from `event-file-ingest-setup` (a missing bucket: nothing to load). Connection
`google_cloud_default`.
"""
from airflow.sdk import DAG, task
from airflow.timetables.trigger import CronTriggerTimetable

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.walkthrough import event_ingest, yellow_cab

PROJECT = event_ingest.watched_project()
BUCKET = event_ingest.watched_bucket()
SCHEDULE = "@hourly"

with DAG(
    dag_id="event-file-ingest-reconcile",
    schedule=CronTriggerTimetable(SCHEDULE, timezone="UTC"),
    catchup=False,
    is_paused_upon_creation=False,  # a safety net is on from the start
    max_active_runs=1,
    default_args=GCP_DEFAULT_ARGS,
    tags=[config.WALKTHROUGH_TAG, config.YELLOW_CAB_TAG],
    doc_md=__doc__,
):
    @task
    def list_unloaded() -> list[dict]:
        from airflow.sdk.exceptions import AirflowFailException
        from google.api_core import exceptions

        try:
            objects = event_ingest.unloaded_objects(BUCKET, PROJECT)
        except exceptions.NotFound as exc:  # dataset or ingest_log
            raise AirflowFailException(f"{exc.message}: run event-file-ingest-setup first") from None
        names = [f"{o['object_name']}#{o['generation']}" for o in objects]
        print(f"{len(objects)} object(s) under {event_ingest.landing_uri(BUCKET)} not in "
              f"{config.YELLOW_CAB_DATASET}.{yellow_cab.INGEST_LOG_TABLE}: {names}")
        return objects

    load_object = yellow_cab.load_file_task(None, task_id="load_object", event_type=event_ingest.RECONCILE)
    load_object.partial(project=PROJECT).expand(obj=list_unloaded())
