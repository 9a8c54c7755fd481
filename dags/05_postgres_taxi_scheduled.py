"""05_postgres_taxi_scheduled_{green,yellow} — flow 04 on a monthly schedule, with backfills (course flow 05).

Green runs at 09:00 and yellow at 10:00 on the 1st of each month. The month loaded is the month of
the run's logical date (the course's `trigger.date`), so the run of 2019-03-01 loads 2019-03.
Catchup covers 2019-01 to 2021-07, the published months; `airflow backfill create` reruns any range.
Timezone: env `ZOOMCAMP_TIMEZONE` (default UTC; the homework uses America/New_York).
"""
from airflow.sdk import DAG
from airflow.timetables.trigger import CronTriggerTimetable

from include.zoomcamp import config
from include.zoomcamp.schedules import MONTHLY_CRON, catchup_window, schedule_timezone
from include.zoomcamp.taxi.postgres_tasks import TAXI_DEFAULT_ARGS, postgres_taxi_tasks


def scheduled_taxi_dag(taxi: str) -> DAG:
    start, end = catchup_window()
    with DAG(
        dag_id=f"05_postgres_taxi_scheduled_{taxi}",
        schedule=CronTriggerTimetable(MONTHLY_CRON[taxi], timezone=schedule_timezone()),
        start_date=start,
        end_date=end,
        catchup=True,
        # Each run stages in its own temporary table, so two months may load at once.
        max_active_runs=2,
        default_args=TAXI_DEFAULT_ARGS,
        tags=[config.TAG],
        doc_md=__doc__,
    ) as dag:
        postgres_taxi_tasks(taxi=taxi)
    return dag


green = scheduled_taxi_dag("green")
yellow = scheduled_taxi_dag("yellow")
