"""event-file-ingest-reconcile — the safety net of walkthrough 3_5's event-driven ingest (Kestra namespace
gcp.yellowcab).

Hourly and whenever triggered, loads each .parquet/.csv generation under gs://<bucket>/landing/ that
`YellowCab.ingest_log` lacks (an upload whose event never became a run), with `event-file-ingest`'s loader.
Details: docs/walkthrough.md#nothing-lost-the-reconciliation
"""
from airflow.sdk import DAG, task
from airflow.timetables.trigger import CronTriggerTimetable

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.walkthrough import YELLOW_CAB_TAGS, event_ingest
from include.zoomcamp.walkthrough.yellow_cab.tables import INGEST_LOG_TABLE
from include.zoomcamp.walkthrough.yellow_cab.tasks import load_file_task

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
    tags=YELLOW_CAB_TAGS,
    doc_md=__doc__,
):
    @task
    def list_unloaded() -> list[dict]:
        objects = event_ingest.unloaded_objects(BUCKET, PROJECT)
        names = [f"{o['object_name']}#{o['generation']}" for o in objects]
        print(f"{len(objects)} object(s) under {event_ingest.landing_uri(BUCKET)} not in "
              f"{config.YELLOW_CAB_DATASET}.{INGEST_LOG_TABLE}: {names}")
        return objects

    load_object = load_file_task(None, task_id="load_object", event_type=event_ingest.RECONCILE)
    load_object.partial(project=PROJECT).expand(obj=list_unloaded())
