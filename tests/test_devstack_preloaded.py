"""devstack.preloaded: the scheduler and the Celery workers (through devstack.component) import the providers
the DAGs use before they fork tasks, unless ZOOMCAMP_PRELOAD_PROVIDERS=0."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from devstack import preloaded, standalone, workers


def test_the_providers_are_read_from_the_dags_and_include_never_the_projects_own_modules():
    modules = preloaded.provider_modules(preloaded.PROJECT_ROOT / source for source in preloaded.SOURCES)
    assert "airflow.providers.google.cloud.operators.bigquery" in modules  # dags/yellow_cab_subflow.py
    assert "airflow.providers.postgres.hooks.postgres" in modules  # include/zoomcamp/...
    assert all(name.startswith("airflow.providers.") for name in modules)


def test_imported_modules_reads_absolute_imports_only(tmp_path):
    source = tmp_path / "a_dag.py"
    source.write_text(textwrap.dedent("""
        import airflow.providers.standard.operators.bash
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from . import sibling
        def later():
            from airflow.providers.postgres.hooks.postgres import PostgresHook
    """))
    assert preloaded.imported_modules(source) == {
        "airflow.providers.standard.operators.bash", "airflow.providers.google.cloud.hooks.gcs",
        "airflow.providers.postgres.hooks.postgres"}


def test_a_file_that_is_not_valid_python_is_skipped(tmp_path):
    (tmp_path / "half_written.py").write_text("from airflow.providers.standard.operators.bash import (\n")
    (tmp_path / "good.py").write_text("from airflow.providers.standard.operators.empty import EmptyOperator\n")
    assert preloaded.provider_modules([tmp_path]) == ["airflow.providers.standard.operators.empty"]


def test_a_module_that_cannot_be_imported_is_reported_and_the_rest_are_imported():
    bash = "airflow.providers.standard.operators.bash"
    code = ("import sys; from devstack import preloaded; "
            f"print(preloaded.preload(['airflow.providers.no_such_provider.hooks', '{bash}'])); "
            f"print('{bash}' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=preloaded.PROJECT_ROOT).stdout.split()
    assert out == ["['airflow.providers.no_such_provider.hooks']", "True"]


def test_the_scheduler_the_celery_workers_and_the_other_components_start_through_devstack_component(
        monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv(workers.WORKERS_ENV, "1")
    monkeypatch.setenv(workers.ISOLATION_ENV, "none")
    monkeypatch.setenv("ZOOMCAMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    started = standalone.components()
    through_component = [sys.executable, "-m", "devstack.component"]
    assert started["scheduler"][0] == [*through_component, "scheduler", "--skip-serve-logs"]
    assert started["worker-1"][0][:5] == [*through_component, "celery", "worker"]
    assert started["dag-processor"][0] == [*through_component, "dag-processor"]
    assert started["triggerer"][0] == [*through_component, "triggerer", "--skip-serve-logs"]
    assert started["api-server"][0] == [*through_component, "api-server"]


def test_a_switch_value_that_is_neither_on_nor_off_names_both(monkeypatch):
    with pytest.raises(SystemExit, match=r"ZOOMCAMP_PRELOAD_PROVIDERS='maybe': say 1 .* or 0"):
        preloaded.enabled({preloaded.SWITCH_ENV: "maybe"})
    monkeypatch.setenv(preloaded.SWITCH_ENV, "maybe")
    with pytest.raises(SystemExit, match="ZOOMCAMP_PRELOAD_PROVIDERS='maybe'"):
        standalone.components()  # before any component starts


def _run_component(arguments: list[str], switch: str | None) -> str:
    """What `airflow` is handed by devstack.component.main() (its arguments) and whether, by then, the DAGs'
    providers and any of the project's modules are loaded."""
    code = ("import sys, airflow.__main__; from devstack import component\n"
            "airflow.__main__.main = lambda: print(sys.argv[1:], "
            "'airflow.providers.google.cloud.operators.bigquery' in sys.modules, "
            "any(name.startswith(('include.', 'dags.')) for name in sys.modules))\n"
            f"sys.argv = ['-m', *{arguments!r}]\n"
            "component.main()")
    env = {key: value for key, value in os.environ.items() if key != preloaded.SWITCH_ENV}
    if switch is not None:
        env[preloaded.SWITCH_ENV] = switch
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=preloaded.PROJECT_ROOT, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_processes_that_fork_tasks_import_the_providers_before_airflow_runs_the_command():
    assert _run_component(["scheduler", "--skip-serve-logs"], None) == "['scheduler', '--skip-serve-logs'] True False"
    assert _run_component(["celery", "worker"], "1") == "['celery', 'worker'] True False"


def test_the_others_and_a_switched_off_scheduler_do_not():
    assert _run_component(["dag-processor"], None) == "['dag-processor'] False False"
    assert _run_component(["scheduler"], "0") == "['scheduler'] False False"


def test_the_component_is_airflows_own_command():
    """`python -m devstack.component scheduler --help` is `airflow scheduler --help`, after the imports."""
    out = subprocess.run([sys.executable, "-m", "devstack.component", "scheduler", "--help"], capture_output=True,
                         text=True, timeout=120, cwd=preloaded.PROJECT_ROOT)
    assert out.returncode == 0, out.stderr
    assert "Usage: airflow scheduler" in out.stdout and "--skip-serve-logs" in out.stdout
    assert "not preloaded" not in out.stderr
