"""Walkthrough 4_1: a demo flow to practise reading logs and replaying a failed run.

`log_levels` writes one line at each level; `gate` fails on purpose until it is opened (param or
Variable `demo_gate_open`), so a learner can open it and clear the failed task to re-run it
(Kestra's Replay).
"""
from __future__ import annotations

import logging

from airflow.sdk import Variable

from include.zoomcamp import config
from include.zoomcamp.errors import PermanentError

log = logging.getLogger(__name__)

OPEN_VALUES = {"true", "1", "yes", "on"}


class GateClosed(PermanentError):
    """The demo gate is closed: only a person opening it (param or Variable) lets the task pass."""


def log_levels() -> None:
    log.debug("DEBUG: details for troubleshooting (shown when [logging] logging_level is DEBUG)")
    log.info("INFO: the demo flow is running")
    log.warning("WARNING: something looks unusual but the run goes on")
    log.error("ERROR: something went wrong (only logged: this task still succeeds)")


def gate_is_open(param_value: bool) -> bool:
    variable = Variable.get(config.DEMO_GATE_OPEN_VAR, default="false")
    return bool(param_value) or str(variable).strip().lower() in OPEN_VALUES


def pass_gate(param_value: bool) -> str:
    """Fails (no retry) while the gate is closed, saying how to open it and replay the task."""
    if not gate_is_open(param_value):
        raise GateClosed(
            f"The demo gate is closed on purpose (param and Variable '{config.DEMO_GATE_OPEN_VAR}' are false). "
            f"Set Variable {config.DEMO_GATE_OPEN_VAR}=true (Admin > Variables), then clear this task to re-run it."
        )
    log.info("The gate is open: the run goes on")
    return "open"
