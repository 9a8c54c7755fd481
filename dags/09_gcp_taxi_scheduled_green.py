"""09_gcp_taxi_scheduled_{green,yellow} — flow 08 on a monthly schedule, with backfills (course flow 09).

Green at 09:00 and yellow at 10:00 on the 1st; the month is the run's logical date; start and end
dates are the whole dataset (2019-01 to 2021-07), loaded by backfills of any range
(`airflow backfill create`, or Trigger > Backfill in the UI), as for flow 05.
"""
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp.taxi_tasks import gcp_taxi_tasks
from include.zoomcamp.schedules import scheduled_taxi_dag

green = scheduled_taxi_dag("09_gcp_taxi_scheduled_green", "green", gcp_taxi_tasks, __doc__,
                           default_args=GCP_DEFAULT_ARGS, render_template_as_native_obj=True)
yellow = scheduled_taxi_dag("09_gcp_taxi_scheduled_yellow", "yellow", gcp_taxi_tasks, __doc__,
                            default_args=GCP_DEFAULT_ARGS, render_template_as_native_obj=True)
