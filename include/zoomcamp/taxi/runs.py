"""What a taxi run loads: from its params (manual DAGs) or its logical date (scheduled DAGs)."""
from __future__ import annotations

from include.zoomcamp.taxi.source import TaxiMonth


def month_of_run(context, taxi: str | None = None) -> TaxiMonth:
    """Manual runs name the month in params; scheduled runs take it from the logical date,
    as the course takes `trigger.date | date('yyyy-MM')`."""
    params = context["params"]
    if taxi is None:
        return TaxiMonth(params["taxi"], str(params["year"]), str(params["month"]))
    return TaxiMonth.from_logical_date(taxi, context["logical_date"])


def labels(month: TaxiMonth) -> dict[str, str]:
    """The course's run labels (`file`, `taxi`)."""
    return {"file": month.file_name, "taxi": month.taxi}
