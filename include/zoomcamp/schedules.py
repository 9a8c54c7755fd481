"""Schedules of the course's monthly flows: green 09:00 and yellow 10:00 on the 1st, past months by backfill."""
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


def published_window() -> tuple[pendulum.DateTime, pendulum.DateTime]:
    """From the first published month to the last one (its 1st, end of day)."""
    tz = schedule_timezone()
    first_year, first_month = config.FIRST_TAXI_MONTH
    last_year, last_month = config.LAST_TAXI_MONTH
    return (pendulum.datetime(first_year, first_month, 1, tz=tz),
            pendulum.datetime(last_year, last_month, 1, 23, 59, tz=tz))


def scheduled_taxi_dag(dag_id: str, taxi: str, add_tasks: Callable[..., None], doc_md: str, **dag_kwargs):
    """A monthly twin of a manual taxi DAG: month from the logical date, between the published months.

    Past months are loaded by backfills (`airflow backfill create`, or Trigger > Backfill in the UI),
    which run only while the DAG is active. So the twin is active from the start and does not catch
    up by itself: a backfill then loads exactly the months asked for, and (un)pausing starts
    nothing. Every published month at once is the backfill of 2019-01-01 .. 2021-07-31.
    """
    from airflow.sdk import DAG
    from airflow.timetables.trigger import CronTriggerTimetable

    from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS

    start, end = published_window()
    default_args = {**RETRY_DEFAULT_ARGS, **dag_kwargs.pop("default_args", {})}
    with DAG(
        dag_id=dag_id,
        schedule=CronTriggerTimetable(MONTHLY_CRON[taxi], timezone=schedule_timezone()),
        start_date=start,
        end_date=end,
        catchup=False,
        is_paused_upon_creation=False,
        # No cap on runs: the loads themselves take turns in the taxi-load pool.
        default_args=default_args,
        tags=[config.TAG],
        doc_md=doc_md,
        **dag_kwargs,
    ) as dag:
        add_tasks(taxi=taxi)
    return dag
