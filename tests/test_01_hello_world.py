from tests.conftest import run_dag


def test_hello_world_runs_and_logs_at_error(dagbag, caplog):
    dag = dagbag.get_dag("01_hello_world")
    run = run_dag(dag, run_conf={"name": "Ada"})
    assert run.state == "success"
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert all(ti.state == "success" for ti in tis.values()), {k: v.state for k, v in tis.items()}
    assert tis["generate_output"].xcom_pull(task_ids="generate_output") == "I was generated during this workflow."


def test_scheduled_runs_greet_sarah_and_manual_runs_use_the_param(dagbag):
    from types import SimpleNamespace

    dag = dagbag.get_dag("01_hello_world")
    template = dag.get_template_env().from_string(dag.get_task("hello_message").message)
    macros = dag.user_defined_macros
    scheduled = template.render(dag_run=SimpleNamespace(run_type="scheduled"), params={"name": "Will"}, **macros)
    manual = template.render(dag_run=SimpleNamespace(run_type="manual"), params={"name": "Will"}, **macros)
    assert (scheduled, manual) == ("Hello, Sarah!", "Hello, Will!")
