"""Schedules of the course's monthly flows: green 09:00 and yellow 10:00 on the 1st, with catchup."""
from __future__ import annotations

import os

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
