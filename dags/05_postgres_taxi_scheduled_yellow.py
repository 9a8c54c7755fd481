"""05_postgres_taxi_scheduled_yellow — flow 04's load of the yellow taxi data, monthly (course flow 05).

Runs at 10:00 on the 1st and loads the month of its logical date; the published months
(2019-01 to 2021-07) are loaded by backfills (`airflow backfill create`, or Trigger > Backfill).
Timezone: env `ZOOMCAMP_TIMEZONE` (default UTC).
Details: docs/operations.md#schedules-and-backfills-flows-05-and-09
"""
from include.zoomcamp.schedules import scheduled_taxi_dag
from include.zoomcamp.taxi.postgres_tasks import postgres_taxi_tasks

dag = scheduled_taxi_dag("05_postgres_taxi_scheduled_yellow", "yellow", postgres_taxi_tasks, __doc__)
