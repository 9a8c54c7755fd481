"""01_hello_world — the orchestration concepts in one DAG (course flow 01).

A param, a message rendered at run time, an output, a deferred 15 s wait, logs at ERROR set once in
`default_args`, at most 2 runs at a time, a daily schedule that starts paused.

Details: docs/course.md#01_hello_world
"""
import pendulum
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import DAG, Param, task

from include.zoomcamp import config
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.operators import LogOperator

# Kestra trigger inputs: what the schedule passes instead of the param default.
SCHEDULED_INPUTS = {"name": "Sarah"}
NAME = "{{ (scheduled_inputs if dag_run.run_type == 'scheduled' else params).name }}"
WELCOME_MESSAGE = "Hello, " + NAME + "!"

with DAG(
    dag_id="01_hello_world",
    schedule="0 10 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=True,
    max_active_runs=2,
    params={"name": Param("Will", type="string", title="Name", description="Who to greet")},
    user_defined_macros={"scheduled_inputs": SCHEDULED_INPUTS},
    default_args={**RETRY_DEFAULT_ARGS, "level": "ERROR"},
    tags=[config.TAG],
    doc_md=__doc__,
):
    hello_message = LogOperator(task_id="hello_message", message=WELCOME_MESSAGE)

    @task
    def generate_output() -> str:
        return "I was generated during this workflow."

    # Deferred to the triggerer: the 15 s wait holds no worker slot (Kestra's Sleep task).
    sleep = DateTimeSensorAsync(
        task_id="sleep", target_time="{{ (ti.start_date + macros.timedelta(seconds=15)).isoformat() }}"
    )
    log_output = LogOperator(
        task_id="log_output",
        message="This is an output: {{ ti.xcom_pull(task_ids='generate_output') }}",
    )
    goodbye_message = LogOperator(task_id="goodbye_message", message="Goodbye, " + NAME + "!")

    hello_message >> generate_output() >> sleep >> log_output >> goodbye_message
