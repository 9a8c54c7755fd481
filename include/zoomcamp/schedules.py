"""Schedules of the course's monthly flows: green 09:00 and yellow 10:00 on the 1st, with catchup."""
from __future__ import annotations

import os
from collections.abc import Callable

import pendulum

from include.zoomcamp import config

MONTHLY_CRON = {"green": "0 9 1 * *", "yellow": "0 10 1 * *"}
# Read at parse time from the environment (not a Variable: no metadata-database access at parse).
TIMEZONE_ENV = "ZOOMCAMP_TIMEZONE"


def schedule_timezone() -> str:
    return os.environ.get(TIMEZONE_ENV, "UTC")


def catchup_window() -> tuple[pendulum.DateTime, pendulum.DateTime]:
    """From the first published month to the last one (its 1st, end of day)."""
    tz = schedule_timezone()
    first_year, first_month = config.FIRST_TAXI_MONTH
    last_year, last_month = config.LAST_TAXI_MONTH
    return (pendulum.datetime(first_year, first_month, 1, tz=tz),
            pendulum.datetime(last_year, last_month, 1, 23, 59, tz=tz))


def scheduled_taxi_dag(dag_id: str, taxi: str, add_tasks: Callable[..., None], doc_md: str, **dag_kwargs):
    """A monthly twin of a manual taxi DAG: month from the logical date, catchup over the published months."""
    from airflow.sdk import DAG
    from airflow.timetables.trigger import CronTriggerTimetable

    from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS

    start, end = catchup_window()
    default_args = {**RETRY_DEFAULT_ARGS, **dag_kwargs.pop("default_args", {})}
    with DAG(
        dag_id=dag_id,
        schedule=CronTriggerTimetable(MONTHLY_CRON[taxi], timezone=schedule_timezone()),
        start_date=start,
        end_date=end,
        catchup=True,
        # Unpausing starts the catch-up of every published month: a deliberate step, as in the course.
        is_paused_upon_creation=True,
        # Each run stages its month separately, so two months may load at once.
        max_active_runs=2,
        default_args=default_args,
        tags=[config.TAG],
        doc_md=doc_md,
        **dag_kwargs,
    ) as dag:
        add_tasks(taxi=taxi)
    return dag
