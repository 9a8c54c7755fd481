"""The benchmarks (bench/, `make bench`) drive Airflow through the tests' own AirflowStack: each method they
call on it exists, so a change to the tests' fixtures cannot leave `make bench` failing after minutes of
set-up. (The benchmarks themselves run in `make bench`, not in the suite: they print figures.)"""
from __future__ import annotations

import ast
from pathlib import Path

from tests.fixtures.airflow_stack import AirflowStack

BENCH = Path(__file__).resolve().parents[1] / "bench"


def stack_calls(path: Path) -> set[str]:
    """The attributes `stack.<name>` a file uses."""
    return {node.attr for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "stack"}


def test_the_benchmarks_call_only_what_the_airflow_stack_has(tmp_path):
    stack = AirflowStack({"AIRFLOW__API__BASE_URL": "http://127.0.0.1:9"}, tmp_path / "stack.log")  # not started
    missing = {path.name: sorted(name for name in stack_calls(path) if not hasattr(stack, name))
               for path in sorted(BENCH.glob("*.py"))}
    assert stack_calls(BENCH / "backfill.py")  # the check reads what it should
    assert {name: names for name, names in missing.items() if names} == {}


def test_the_check_finds_a_missing_method(tmp_path):
    bench = tmp_path / "a_bench.py"
    bench.write_text("def main(stack):\n    stack.wait_for_runs('dag', 3)\n    stack.trigger('dag')\n")
    assert stack_calls(bench) == {"wait_for_runs", "trigger"}
    assert not hasattr(AirflowStack, "wait_for_runs")
