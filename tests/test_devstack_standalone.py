"""devstack.standalone stopped (as `make run` stops it on Ctrl-C) while a task runs, on a stack of its own:
the task's supervisor interrupts it and reports its end through the api-server, which stops only after
the scheduler, so the state is recorded and nothing has to be killed; a SIGTERM to devstack.standalone alone
stops the components in the same order; a dag-processor that missed its signal gets another."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import psycopg
import pytest

from devstack import standalone
from tests.fixtures.polling import poll_until

DAG_ID = "stop_probe"
PROBE_DAG = f'''
from airflow.sdk import DAG, task

with DAG(dag_id="{DAG_ID}", schedule=None):
    @task
    def long_task():
        import time

        print("long_task started", flush=True)
        time.sleep(600)

    long_task()
'''


@pytest.mark.stack
@pytest.mark.timeout(600)
def test_a_stop_with_a_task_running_records_its_end_before_the_api_server_stops(services, tmp_path):
    probe = tmp_path / "probe_dags"
    probe.mkdir()
    (probe / f"{DAG_ID}.py").write_text(PROBE_DAG)
    bundles = [{"name": "probe", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(probe)}}]
    env = {"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles)}
    log = tmp_path / "standalone.log"
    with services.airflow_stack("standalone_stop", log, env, own_home_and_port=True) as stack:
        stack.wait_for_dag(DAG_ID)
        run_id = stack.trigger(DAG_ID)
        poll_until(lambda: stack.task_instances(DAG_ID, run_id).get("long_task", {}).get("state") == "running", 180,
                   "the task is not running")
        poll_until(lambda: "long_task started" in stack.task_log(DAG_ID, run_id, "long_task"), 60,
                   "the task did not start its work")

    assert stack.proc.returncode == 0, log.read_text()[-3000:]  # SIGKILL would be -9
    output = log.read_text()
    lines = output.splitlines()
    scheduler_done = next(i for i, line in enumerate(lines) if "Exited execute loop" in line)
    api_stopping = next(i for i, line in enumerate(lines) if line.startswith("api-server") and "Shutting down" in line)
    assert scheduler_done < api_stopping
    assert "Connection refused" not in output
    metadata = stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(metadata) as conn:
        state, end_date = conn.execute("SELECT state, end_date FROM task_instance WHERE dag_id = %s AND run_id = %s",
                                       [DAG_ID, run_id]).fetchone()
    assert state == "failed" and end_date is not None  # interrupted by the stop, and its end recorded


def test_a_sigterm_stops_the_api_server_and_the_log_server_after_the_others(tmp_path):
    """Each stand-in component notes its name when its SIGTERM comes, then takes a moment to exit."""
    stopped = tmp_path / "stopped"
    code = ("import signal, sys, time\n"
            "def stop(*_):\n"
            "    open(sys.argv[2], 'a').write(sys.argv[1] + '\\n'); time.sleep(0.5); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, stop)\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")
    running = {name: subprocess.Popen([sys.executable, "-c", code, name, str(stopped)], stdout=subprocess.PIPE)
               for name in ("api-server", "scheduler", "log-server", "dag-processor", "triggerer")}
    try:
        for proc in running.values():
            assert proc.stdout.readline() == b"ready\n"
        standalone._stop(running, group_signalled=False)
        order = stopped.read_text().split()
        assert sorted(order[:3]) == ["dag-processor", "scheduler", "triggerer"]
        assert sorted(order[3:]) == sorted(standalone.SERVING)
        assert all(proc.returncode == 0 for proc in running.values())
    finally:
        for proc in running.values():
            proc.kill()
            proc.wait()


def test_a_dag_processor_that_missed_its_signal_is_signalled_again(tmp_path, monkeypatch):
    """The stand-in dag-processor notes each SIGTERM and exits on the second: the first one stands for the
    group's SIGINT lost in an at-fork callback, which leaves it running."""
    monkeypatch.setattr(standalone, "RESIGNAL_AFTER", 1.0)
    signals = tmp_path / "signals"
    code = ("import signal, sys, time\n"
            "def note(*_):\n"
            "    with open(sys.argv[1], 'a') as f: f.write('SIGTERM\\n')\n"
            "    if open(sys.argv[1]).read().count('SIGTERM') == 2: sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, note)\n"
            "print('ready', flush=True)\n"
            "while True: time.sleep(0.1)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(signals)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)  # the signal it misses
        poll_until(lambda: signals.exists(), 10, "the first SIGTERM noted")
        standalone._stop({"dag-processor": proc}, group_signalled=True)
        assert proc.returncode == 0
        assert signals.read_text().split() == ["SIGTERM", "SIGTERM"]
    finally:
        proc.kill()
        proc.wait()
