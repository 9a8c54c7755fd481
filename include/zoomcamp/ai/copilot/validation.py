"""Is a drafted DAG file usable? Checked for real, the way the dag-processor would meet it.

1. It parses as Python.
2. No top-level work (a static check, before anything runs): at module level, outside functions, only
   calls that build the DAG — names imported from `airflow`, `include.zoomcamp`, `datetime` or
   `pendulum`, methods of objects the file itself built, pure builtins such as `dict` or `range`, and
   functions of the file whose bodies obey the same rule. `Variable.get`, connections and hooks are
   refused there too: the dag-processor runs module-level code at every parse, so work belongs in tasks.
3. `ruff check --select AIR` (Airflow 3 removals and moves, explicit schedule, task-id names).
4. It imports in a `DagBag` in a subprocess — a clean environment (no connection or key inherited),
   sockets closed, `Variable.get`/`Connection.get` refused, a timeout — with no import error and at
   least one DAG. Step 2 passing first means the import runs no work the file did not declare as DAG
   building; the socket block catches what the static rule cannot see.
5. Its DAGs follow the project's DAG policy (tests/dags): approved tags, every task retrying at least
   twice — so a draft copied into `dags/` passes the project's tests.

Ruff's preview AIR rules stay off, as in the project's own lint (AIR202 would flag the project's DAGs).
"""
from __future__ import annotations

import ast
import builtins
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from include.zoomcamp import config
from include.zoomcamp.ai.copilot.context import PROJECT_ROOT

IMPORT_TIMEOUT_S = 180  # a cold import of Airflow and a provider takes tens of seconds on a busy machine
RUFF_TIMEOUT_S = 60
MAX_ERROR_CHARS = 1_500  # of each traceback handed back to the model: its end says what went wrong

APPROVED_TAGS = frozenset({config.TAG, config.WALKTHROUGH_TAG, *config.WALKTHROUGH_NAMESPACES})
MIN_RETRIES = 2
DAG_BUILDING_PACKAGES = ("airflow", "include", "datetime", "pendulum")
PURE_BUILTINS = frozenset(
    "all any bool dict enumerate float frozenset int isinstance len list max min range repr reversed set "
    "sorted str sum tuple zip".split()
)
_PARSE_TIME_ACCESS = {("Variable", "get"), ("Variable", "set"), ("Connection", "get"), ("BaseHook", "get_connection")}
_PYTHON_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.DOTALL)
_ANY_BLOCK = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)

# Runs in the subprocess: what the dag-processor does to a file, minus the network and the metadata DB.
_IMPORT_PROBE = """\
import json, socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError("network or database access while the file is parsed: move it into a task")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from airflow.sdk import Connection, Variable
Variable.get = staticmethod(refuse)
Connection.get = staticmethod(refuse)
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1], safe_mode=False)
dags = {dag_id: {"tags": sorted(dag.tags), "retries": {t.task_id: t.retries for t in dag.tasks}}
        for dag_id, dag in bag.dags.items()}
with open(sys.argv[2], "w") as out:
    json.dump({"import_errors": bag.import_errors, "dags": dags}, out)
"""


class NoCodeBlock(ValueError):
    pass


@dataclass
class Validation:
    code: str
    errors: list[str] = field(default_factory=list)
    dag_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def extract_code(answer: str) -> str:
    """The Python file in a model's answer: its first fenced code block (```python preferred)."""
    code = (_PYTHON_BLOCK.findall(answer) or _ANY_BLOCK.findall(answer) or [""])[0].strip()
    if not code:
        raise NoCodeBlock("the answer has no fenced ```python code block with the DAG file")
    return code + "\n"


def validate(code: str) -> Validation:
    result = Validation(code)
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        result.errors.append(f"SyntaxError: {error.msg} (line {error.lineno})")
        return result
    result.errors += top_level_work(tree)
    with tempfile.TemporaryDirectory(prefix="copilot-draft-") as tmp:
        draft = Path(tmp) / "draft_dag.py"
        draft.write_text(code)
        result.errors += ruff_air(draft)
        if not result.errors:  # only a file without top-level work is imported (i.e. run)
            dags, import_errors = import_in_dagbag(draft, Path(tmp))
            result.dag_ids = sorted(dags)
            result.errors += import_errors + dag_policy(dags)
            if not dags and not import_errors:
                result.errors.append("the file defines no DAG (nothing a DagBag can collect)")
    return result


def dag_policy(dags: dict[str, dict]) -> list[str]:
    errors = []
    for dag_id, dag in dags.items():
        if not dag["tags"] or set(dag["tags"]) - APPROVED_TAGS:
            errors.append(f"DAG {dag_id}: tags {dag['tags']} — use tags=[\"{config.TAG}\"] (approved: "
                          f"{', '.join(sorted(APPROVED_TAGS))})")
        few = {task: n for task, n in dag["retries"].items() if n < MIN_RETRIES}
        if few:
            errors.append(f"DAG {dag_id}: tasks retrying fewer than {MIN_RETRIES} times {few} — use "
                          "default_args=GCP_DEFAULT_ARGS or RETRY_DEFAULT_ARGS from include.zoomcamp.defaults")
    return errors


def top_level_work(tree: ast.Module) -> list[str]:
    imported = _imported_names(tree)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    checker = _TopLevelCalls(imported, functions)
    for statement in tree.body:
        checker.visit(statement)
    return checker.errors


def _imported_names(tree: ast.Module) -> dict[str, str]:
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                names[alias.asname or alias.name] = f"{'.' * node.level}{node.module or ''}.{alias.name}"
    return names


def _call_path(func: ast.expr) -> list[str]:
    """`a.b.c(...)` -> ["a", "b", "c"]; [] when the call does not start at a name (`"x".join(...)`) or
    calls what another call returned (`f(...).g(...)`: that inner call is checked on its own)."""
    parts = []
    while isinstance(func, ast.Attribute | ast.Subscript):  # tasks[0].expand(...): the root is `tasks`
        if isinstance(func, ast.Attribute):
            parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        return [func.id, *reversed(parts)]
    return []


class _TopLevelCalls(ast.NodeVisitor):
    def __init__(self, imported: dict[str, str], functions: dict[str, ast.AST]):
        self.imported, self.functions = imported, functions
        self.checked_functions: set[str] = set()
        self.errors: list[str] = []

    def visit_FunctionDef(self, node):  # a body runs when called, not at import; decorators run now
        for decorator in node.decorator_list:
            self.visit(decorator)
        for default in node.args.defaults + node.args.kw_defaults:
            if default is not None:
                self.visit(default)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        pass

    def visit_Call(self, node: ast.Call):
        path = _call_path(node.func)
        problem = self._problem(path, node)
        if problem:
            self.errors.append(f"line {node.lineno}: top-level call `{ast.unparse(node.func)}(...)` {problem}")
        self.generic_visit(node)

    def _problem(self, path: list[str], node: ast.Call) -> str | None:
        if not path:
            return None
        root = path[0]
        if tuple(path[-2:]) in _PARSE_TIME_ACCESS:
            return ("reads the metadata database at every parse: read Variables in templates "
                    "(\"{{ var.value.get('name', 'default') }}\") and connections inside tasks")
        if path[-1].endswith("Hook") or root.endswith("Hook"):
            return "creates a hook at parse time: hooks belong inside tasks"
        if root in self.imported:
            package = self.imported[root].lstrip(".").split(".")[0]
            if package in DAG_BUILDING_PACKAGES:
                return None
            return (f"runs `{self.imported[root]}` at every parse of the file (top-level work): "
                    "move it into a task")
        if root in self.functions:
            function = self.functions[root]
            if function.decorator_list or root in self.checked_functions:
                return None  # @task / @dag / @task_group: calling it builds the DAG
            self.checked_functions.add(root)
            for statement in function.body:  # a plain function called here runs its body now
                self.visit(statement)
            return None
        if hasattr(builtins, root) and root not in PURE_BUILTINS:
            return f"runs the builtin `{root}` at every parse of the file (top-level work): move it into a task"
        return None  # a method of an object the file built (an operator, a task's XComArg, a Param)


def ruff_air(path: Path) -> list[str]:
    """`ruff check --select AIR` on the file, isolated from any project configuration."""
    from ruff.__main__ import find_ruff_bin

    completed = subprocess.run(
        [find_ruff_bin(), "check", "--isolated", "--no-cache", "--select", "AIR", "--target-version", "py311",
         "--output-format", "concise", str(path)],
        capture_output=True, text=True, timeout=RUFF_TIMEOUT_S,
    )
    if completed.returncode not in (0, 1):
        raise RuntimeError(f"ruff failed to run: {completed.stderr.strip()}")
    prefix = f"{path}:"
    return [f"ruff: line {line[len(prefix):]}" for line in completed.stdout.splitlines() if line.startswith(prefix)]


def import_in_dagbag(path: Path, workdir: Path) -> tuple[dict[str, dict], list[str]]:
    """({DAG id: its tags and task retries}, import errors) of the file as a DagBag collects it, in a subprocess."""
    out = workdir / "dagbag.json"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(PROJECT_ROOT),
        "HOME": str(workdir),
        "AIRFLOW_HOME": str(workdir / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(workdir),
        # any metadata-database access would open a socket, which the probe refuses
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg://copilot:draft@127.0.0.1:9/none",
    }
    try:
        completed = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, str(path), str(out)], cwd=PROJECT_ROOT,
                                   env=env, capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {}, [f"importing the file took more than {IMPORT_TIMEOUT_S} s (top-level work or an endless loop)"]
    if not out.exists():
        return {}, [f"the DagBag probe failed: {completed.stderr[-MAX_ERROR_CHARS:]}"]
    found = json.loads(out.read_text())
    errors = [f"import error: {_tail(trace)}" for trace in found["import_errors"].values()]
    return found["dags"], errors


def _tail(trace: str) -> str:
    return trace if len(trace) <= MAX_ERROR_CHARS else "..." + trace[-MAX_ERROR_CHARS:]
