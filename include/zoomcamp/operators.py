"""Small operators the course flows need and Airflow has no provider operator for."""
from __future__ import annotations

import logging

from airflow.sdk import BaseOperator


class LogOperator(BaseOperator):
    """Kestra's `io.kestra.plugin.core.log.Log`: log a rendered message at a chosen level.

    `level` is an ordinary constructor argument, so a DAG sets it once for every log task through
    `default_args={"level": "ERROR"}` — the counterpart of Kestra's pluginDefaults.
    """

    template_fields = ("message",)
    ui_color = "#e8f4fd"

    def __init__(self, *, message: str, level: str = "INFO", **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(logging.getLevelName(level.upper()), int):
            raise ValueError(f"Unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
        self.message = message
        self.level = level.upper()

    def execute(self, context) -> None:
        self.log.log(logging.getLevelName(self.level), self.message)
