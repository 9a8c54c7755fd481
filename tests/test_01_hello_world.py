import re
from datetime import datetime, timezone
from types import SimpleNamespace

from tests.conftest import fresh_dag, run_dag

WAIT = "seconds=15"
SHORT_WAIT = 2  # seconds: the run below waits this long instead (the wait's length is checked on its own)


def test_the_wait_ends_15_seconds_after_the_task_starts(dagbag):
    from airflow.sdk.execution_time import macros

    dag = dagbag.get_dag("01_hello_world")
    started = datetime(2025, 1, 1, 10, 0, 0, tzinfo=timezone.utc)
    target = dag.get_template_env().from_string(dag.get_task("sleep").target_time).render(
        ti=SimpleNamespace(start_date=started), macros=macros)
    assert (datetime.fromisoformat(target) - started).total_seconds() == 15


def test_hello_world_runs_logs_at_error_and_defers_its_wait(capfd):
    dag = fresh_dag("01_hello_world")
    sleep = dag.get_task("sleep")
    assert WAIT in sleep.target_time
    sleep.target_time = sleep.target_time.replace(WAIT, f"seconds={SHORT_WAIT}")
    run = run_dag(dag, run_conf={"name": "Ada"})
    assert run.state == "success"
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert all(ti.state == "success" for ti in tis.values()), {k: v.state for k, v in tis.items()}
    assert tis["generate_output"].xcom_pull(task_ids="generate_output") == "I was generated during this workflow."

    log = capfd.readouterr().out  # dag.test() writes the tasks' logs to this process's output
    # Each log task's message, rendered at run time, at the level default_args set once: ERROR.
    logged = {message: re.search(rf"^(\S+) \[(\w+) *\] {re.escape(message)} ", log, re.MULTILINE)
              for message in ("Hello, Ada!", "This is an output: I was generated during this workflow.",
                              "Goodbye, Ada!")}
    assert {message: found and found[2] for message, found in logged.items()} == dict.fromkeys(logged, "error")
    # The wait is deferred to a trigger (no worker slot held), and lasts as long as its target says.
    assert re.search(r"Pausing task as DEFERRED\..*task_id=sleep", log)
    hello, output = (datetime.fromisoformat(logged[m][1]) for m in list(logged)[:2])
    assert (output - hello).total_seconds() >= SHORT_WAIT


def test_scheduled_runs_greet_sarah_and_manual_runs_use_the_param(dagbag):
    from types import SimpleNamespace

    dag = dagbag.get_dag("01_hello_world")
    template = dag.get_template_env().from_string(dag.get_task("hello_message").message)
    macros = dag.user_defined_macros
    scheduled = template.render(dag_run=SimpleNamespace(run_type="scheduled"), params={"name": "Will"}, **macros)
    manual = template.render(dag_run=SimpleNamespace(run_type="manual"), params={"name": "Will"}, **macros)
    assert (scheduled, manual) == ("Hello, Sarah!", "Hello, Will!")
