from tests.conftest import run_dag


def test_hello_world_runs_and_logs_at_error(dagbag, caplog):
    dag = dagbag.get_dag("01_hello_world")
    run = run_dag(dag, run_conf={"name": "Ada"})
    assert run.state == "success"
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert all(ti.state == "success" for ti in tis.values()), {k: v.state for k, v in tis.items()}
    assert tis["generate_output"].xcom_pull(task_ids="generate_output") == "I was generated during this workflow."
