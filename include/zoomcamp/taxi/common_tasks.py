"""Tasks shared by the Postgres (04/05) and BigQuery (08/09) taxi DAGs."""
from __future__ import annotations

import logging

from airflow.sdk import get_current_context, task

from include.zoomcamp import config, templates
from include.zoomcamp.taxi.runs import labels, month_of_run

log = logging.getLogger(__name__)

BASE_URL = templates.variable(config.TAXI_DATA_BASE_URL_VAR, config.DEFAULT_TAXI_DATA_BASE_URL)


def set_labels_task(taxi: str | None):
    """A task that resolves and validates the month; its XCom shows the course's labels (file, taxi)."""

    @task(task_id="set_labels")
    def set_labels() -> dict:
        run_labels = labels(month_of_run(get_current_context(), taxi))
        log.info("file=%s taxi=%s", run_labels["file"], run_labels["taxi"])
        return run_labels

    return set_labels()
