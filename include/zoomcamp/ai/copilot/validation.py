"""Is a drafted DAG file usable? Checked for real, the way the dag-processor would meet it.

1. It parses as Python.
2. No top-level work (a static check, before anything runs): at module level, outside functions, only
   calls that build the DAG — names imported from `airflow`, `include.zoomcamp`, `datetime` or
   `pendulum`, methods of objects the file itself built, pure builtins such as `dict` or `range`, and
   functions of the file whose bodies obey the same rule. `Variable.get`, connections and hooks are
   refused there too: the dag-processor runs module-level code at every parse, so work belongs in tasks.
3. `ruff check --select AIR` (Airflow 3 removals and moves, explicit schedule, task-id names).
4. It imports in a `DagBag` inside the bubblewrap sandbox (`sandbox.py`: no network, nothing of the
   host writable, only the Python installation and `include/` visible, no inherited environment,
   resource and time limits), with no import error and at least one DAG. The static rule of step 2
   cannot see everything (an alias of `os.system`, a lambda, `exec`): the sandbox is what contains a
   file that runs something anyway, and an audit hook reports any process or network call the file
   makes while it is imported as top-level work. Without a sandbox the file is not imported at all and
   the result says "not import-checked".
5. Its DAGs follow the project's DAG policy (tests/dags): approved tags, every task retrying at least
   twice — so a draft copied into `dags/` passes the project's tests.

Ruff's preview AIR rules stay off, as in the project's own lint (AIR202 would flag the project's DAGs).
"""
from __future__ import annotations

import ast
import builtins
import json
import logging
import re
import subprocess
from dataclasses import dataclass, field

from include.zoomcamp import config
from include.zoomcamp.ai.copilot import sandbox
from include.zoomcamp.ai.copilot.context import PROJECT_ROOT

log = logging.getLogger(__name__)

IMPORT_LIMITS = sandbox.Limits(wall_s=180)  # a cold import of Airflow and a provider takes tens of seconds
RUFF_TIMEOUT_S = 60
MAX_ERROR_CHARS = 1_500  # of each traceback handed back to the model: its end says what went wrong
DRAFT_NAME = "draft_dag.py"

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

# What the dag-processor's environment needs to parse a file, and nothing more: no connection, key or
# Variable; a metadata database nobody listens to (the sandbox has no network anyway).
_PROBE_ENV = {
    "PYTHONPATH": str(PROJECT_ROOT),  # inside the sandbox the project shows only include/
    "PYTHONDONTWRITEBYTECODE": "1",
    "AIRFLOW_HOME": f"{sandbox.PRIVATE_DIR}/airflow",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": f"{sandbox.PRIVATE_DIR}/dags",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg://copilot:draft@127.0.0.1:9/none",
}

# Runs in the sandbox: the draft arrives on stdin, the verdict leaves on stdout (what the draft prints goes
# to stderr). The audit hook refuses, and reports, process and network calls made from the draft's code.
_IMPORT_PROBE = """\
import json, os, sys
folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
draft = os.path.join(folder, sys.argv[1])
os.makedirs(folder)
with open(draft, "w") as out:
    out.write(sys.stdin.read())
verdict = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
WORK = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
        "socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto", "socket.sendmsg"}
ran = []
def from_draft():  # the draft's own code, not a module it imports doing its own import-time setup
    frame = sys._getframe(1).f_back
    while frame is not None:
        if frame.f_code.co_filename == draft:
            return True
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return False
        frame = frame.f_back
    return False
def audit(event, args):
    if event in WORK and from_draft():
        ran.append(event)
        raise RuntimeError(f"`{event}` while the file is parsed (top-level work): move it into a task")
sys.addaudithook(audit)
def refuse(*args, **kwargs):
    raise RuntimeError("metadata database access while the file is parsed: move it into a task")
from airflow.sdk import Connection, Variable
Variable.get = staticmethod(refuse)
Connection.get = staticmethod(refuse)
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(draft, safe_mode=False)
dags = {dag_id: {"tags": sorted(dag.tags), "retries": {t.task_id: t.retries for t in dag.tasks}}
        for dag_id, dag in bag.dags.items()}
json.dump({"import_errors": bag.import_errors, "ran": sorted(set(ran)), "dags": dags}, verdict)
verdict.close()
"""


class NoCodeBlock(ValueError):
    pass


@dataclass
class Validation:
    code: str
    errors: list[str] = field(default_factory=list)
    dag_ids: list[str] = field(default_factory=list)
    not_import_checked: str | None = None  # why the file was not imported (no sandbox here)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def import_checked(self) -> bool:
        return self.ok and self.not_import_checked is None

    @property
    def checked_as(self) -> str:
        if self.not_import_checked:
            return f"not import-checked ({self.not_import_checked})"
        return "import-checked in the sandbox"


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
    result.errors += top_level_work(tree) + ruff_air(code)
    if result.errors:  # only a file without top-level work is imported (i.e. run, in the sandbox)
        return result
    no_sandbox = sandbox.unavailable_reason()
    if no_sandbox:
        result.not_import_checked = f"no sandbox to import it in: {no_sandbox}"
        result.dag_ids = declared_dag_ids(tree)
        log.warning("The draft is NOT imported (%s). It was parsed, checked for top-level work and linted "
                    "only: imports, DAG structure and the DAG policy are not verified; it is marked "
                    "\"not import-checked\".", result.not_import_checked)
        return result
    dags, import_errors = import_in_dagbag(code, imports_include(tree))
    result.dag_ids = sorted(dags)
    result.errors += import_errors + dag_policy(dags)
    if not dags and not import_errors:
        result.errors.append("the file defines no DAG (nothing a DagBag can collect)")
    return result


def imports_include(tree: ast.Module) -> bool:
    """Does the file import the project's `include` package (then the sandbox shows it, read-only)?"""
    return any(target.lstrip(".").split(".")[0] == "include" for target in _imported_names(tree).values())


def declared_dag_ids(tree: ast.Module) -> list[str]:
    """DAG ids written literally in the file (`DAG("x")`, `DAG(dag_id="x")`, `@dag(dag_id="x")` or the
    name of a `@dag` function): what a file that was not imported can be named after."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _names_dag(node.func):
            given = [k.value for k in node.keywords if k.arg == "dag_id"] + node.args[:1]
            if given and isinstance(given[0], ast.Constant) and isinstance(given[0].value, str):
                found.append(given[0].value)
        elif isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                called = isinstance(decorator, ast.Call)
                if _names_dag(decorator.func if called else decorator) and not (called and (
                        decorator.args or any(k.arg == "dag_id" for k in decorator.keywords))):
                    found.append(node.name)  # @dag or @dag(...) without an id: the function's name
    return sorted(set(found))


def _names_dag(func: ast.expr) -> bool:
    return (_call_path(func) or [""])[-1] in ("DAG", "dag")


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


def ruff_air(code: str) -> list[str]:
    """`ruff check --select AIR` on the file (given on stdin), isolated from any project configuration."""
    from ruff.__main__ import find_ruff_bin

    completed = subprocess.run(
        [find_ruff_bin(), "check", "--isolated", "--no-cache", "--select", "AIR", "--target-version", "py311",
         "--output-format", "concise", "--stdin-filename", DRAFT_NAME, "-"],
        input=code, capture_output=True, text=True, timeout=RUFF_TIMEOUT_S,
    )
    if completed.returncode not in (0, 1):
        raise RuntimeError(f"ruff failed to run: {completed.stderr.strip()}")
    prefix = f"{DRAFT_NAME}:"
    return [f"ruff: line {line[len(prefix):]}" for line in completed.stdout.splitlines() if line.startswith(prefix)]


def import_in_dagbag(code: str, with_include: bool) -> tuple[dict[str, dict], list[str]]:
    """({DAG id: its tags and task retries}, errors) of the file as a DagBag collects it, in the sandbox."""
    readable = [PROJECT_ROOT / "include"] if with_include else []
    done = sandbox.run_python(["-c", _IMPORT_PROBE, DRAFT_NAME], stdin=code.encode(), readable=readable,
                              env=_PROBE_ENV, limits=IMPORT_LIMITS)
    if done.timed_out:
        return {}, [f"importing the file took more than {IMPORT_LIMITS.wall_s} s (top-level work or an endless "
                    "loop)"]
    verdict = _read_verdict(done.stdout)
    if verdict is None:
        said = done.stderr.decode(errors="replace")
        return {}, [f"the DagBag probe ended without a verdict (exit status {done.returncode}; limits: "
                    f"{IMPORT_LIMITS.cpu_s} s of CPU, {IMPORT_LIMITS.address_space_bytes >> 20} MiB of memory): "
                    f"{_tail(said)}"]
    dags, ran, import_errors = verdict
    errors = [f"the file ran `{event}` while it was imported (top-level work the static check did not see): "
              "move it into a task" for event in ran]
    errors += [f"import error: {_tail(trace)}" for trace in import_errors]
    return dags, errors


def _read_verdict(stdout: bytes) -> tuple[dict[str, dict], list[str], list[str]] | None:
    """The probe's JSON as (DAGs, events reported, import errors); None when it is missing or malformed
    (the draft ran in the probe's process and may have had a hand in it)."""
    try:
        found = json.loads(stdout)
        dags = {str(dag_id): {"tags": [str(tag) for tag in dag["tags"]],
                              "retries": {str(task): int(n) for task, n in dag["retries"].items()}}
                for dag_id, dag in found["dags"].items()}
        return dags, [str(event) for event in found["ran"]], [str(t) for t in found["import_errors"].values()]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _tail(trace: str) -> str:
    return trace if len(trace) <= MAX_ERROR_CHARS else "..." + trace[-MAX_ERROR_CHARS:]
