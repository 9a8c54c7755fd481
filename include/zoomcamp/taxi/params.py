"""The course's taxi inputs as Airflow Params: validated before a run starts, with UI forms."""
from __future__ import annotations

from airflow.sdk import Param

from include.zoomcamp.taxi.schemas import TAXIS
from include.zoomcamp.taxi.source import MONTHS, YEAR_DIGITS

COURSE_YEARS = ["2019", "2020", "2021"]


def taxi_param(default: str) -> Param:
    return Param(default, type="string", enum=list(TAXIS), title="Taxi", description="Which taxi data set to load")


def taxi_month_params(default_taxi: str) -> dict[str, Param]:
    return {
        "taxi": taxi_param(default_taxi),
        # `examples` gives a dropdown that still accepts a typed year (the homework needs 2021).
        # maxLength: a JSON-schema pattern's `$` also matches before a final newline.
        "year": Param("2019", type="string", pattern=f"^{YEAR_DIGITS}$", minLength=4, maxLength=4,
                      examples=COURSE_YEARS, title="Year",
                      description="Four digits; data is published for 2019-01 to 2021-07"),
        "month": Param("01", type="string", enum=list(MONTHS), title="Month", description="Two digits, 01 to 12"),
    }
