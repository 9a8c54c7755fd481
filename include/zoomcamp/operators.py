"""Small operators the course flows need and Airflow has no provider operator for."""
from __future__ import annotations

import logging

from airflow.sdk import BaseOperator, RetryDecision, RetryPolicy


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


class FailWhenChildFails(RetryPolicy):
    """The parent's trigger step does not retry a failed child run (Kestra's `transmitFailed`): the
    child's own tasks have retried already, and a retry here would start another child run. Other
    failures (the API server unreachable for a moment) follow the task's retries.

    TriggerDagRunOperator reports a child run in a failed state as an AirflowException whose message
    says "failed with failed state(s)", whether it waited in the worker or deferred to the triggerer.
    """

    def evaluate(self, exception, try_number, max_tries, context=None) -> RetryDecision:
        if "failed with failed state" in str(exception):
            return RetryDecision.fail(reason=f"the child run failed, so this run fails too: {exception}")
        return RetryDecision.default()


def child_run_poll_seconds() -> int:
    """How often the triggerer checks a child run's state: a second longer than a worker may take to report
    the parent's deferral (`[workers] min_heartbeat_interval`: 1 s in devstack's settings, Airflow's default
    5 s). A parent resumed sooner can be back in the queue before the scheduler has seen that report, and
    Airflow 3.3 then takes the stale report for a task changed from outside and fails the try
    (apache/airflow#67287); the retry would start a second child."""
    from airflow.sdk.configuration import conf

    return conf.getint("workers", "min_heartbeat_interval", fallback=5) + 1


def run_and_wait(task_id: str, trigger_dag_id: str, **kwargs):
    """Kestra's Subflow task with `wait: true` and `transmitFailed: true`: trigger the child DAG and
    wait for its run, deferred to the triggerer (no worker slot is held while the child runs); a
    failed child run fails this task without a retry (FailWhenChildFails)."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    return TriggerDagRunOperator(
        task_id=task_id, trigger_dag_id=trigger_dag_id, wait_for_completion=True, deferrable=True,
        poke_interval=child_run_poll_seconds(), retry_policy=FailWhenChildFails(), **kwargs,
    )
