"""09_gcp_taxi_scheduled_green — flow 08's load of the green taxi data into BigQuery, monthly (course flow 09).

Runs at 09:00 on the 1st and loads the month of its logical date; the whole dataset
(2019-01 to 2021-07) is loaded by backfills of any range (`airflow backfill create`, or
Trigger > Backfill), as for flow 05.
Details: docs/operations.md#schedules-and-backfills-flows-05-and-09
"""
from include.zoomcamp.gcp.taxi_tasks import gcp_taxi_tasks, scheduled_dag_args
from include.zoomcamp.schedules import scheduled_taxi_dag

dag = scheduled_taxi_dag("09_gcp_taxi_scheduled_green", "green", gcp_taxi_tasks, __doc__, **scheduled_dag_args())
