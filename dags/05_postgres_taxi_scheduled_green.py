"""05_postgres_taxi_scheduled_{green,yellow} — flow 04 on a monthly schedule, with backfills (course flow 05).

Green runs at 09:00 and yellow at 10:00 on the 1st of each month. The month loaded is the month of
the run's logical date (the course's `trigger.date`), so the run of 2019-03-01 loads 2019-03.
Start and end dates are the published months (2019-01 to 2021-07); they are loaded by backfills
(`airflow backfill create`, or Trigger > Backfill in the UI), exactly the range asked for: the DAGs
are active from the start and do not catch up by themselves. Loads take turns in the pool
`taxi_loads`. See the README's "Schedules and backfills".
Timezone: env `ZOOMCAMP_TIMEZONE` (default UTC; the homework uses America/New_York).
"""
from include.zoomcamp.schedules import scheduled_taxi_dag
from include.zoomcamp.taxi.postgres_tasks import postgres_taxi_tasks

green = scheduled_taxi_dag("05_postgres_taxi_scheduled_green", "green", postgres_taxi_tasks, __doc__)
yellow = scheduled_taxi_dag("05_postgres_taxi_scheduled_yellow", "yellow", postgres_taxi_tasks, __doc__)
