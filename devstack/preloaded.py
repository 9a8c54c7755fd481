"""The provider modules the project's DAGs use, imported in the scheduler and the Celery workers before they
fork tasks (devstack.component does so unless ZOOMCAMP_PRELOAD_PROVIDERS=0).

The LocalExecutor forks its workers from the scheduler, a Celery worker forks its pool, and each task is
forked from one of those, then imports its DAG file. A Google DAG's file spends most of its import on the
Google provider and its client libraries (about 1.5 s of CPU on the 2-core machine, for every task).
Imported here, once, before those forks, they are shared by every task instead; the cost is the memory
they hold (docs/operations.md#preloaded-providers).

Only installed packages are imported (`airflow.providers.*`), never the project's own modules: an edit to
`include/` or `dags/` reaches the next task as it would without this.
"""
from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterable
from pathlib import Path

SWITCH_ENV = "ZOOMCAMP_PRELOAD_PROVIDERS"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("dags", "include")
PRELOADED_PREFIX = "airflow.providers."


def enabled(env: dict[str, str]) -> bool:
    value = env.get(SWITCH_ENV, "1").strip().lower()
    if value not in ("0", "1", "false", "true", "no", "yes"):
        raise SystemExit(f"{SWITCH_ENV}={value!r}: say 1 (import the DAGs' providers in the scheduler "
                         "before it forks its workers, the default) or 0 (each task imports them itself)")
    return value in ("1", "true", "yes")


def imported_modules(path: Path) -> set[str]:
    """The absolute module names `path` imports (`import a.b`, `from a.b import c`); none when it is not valid
    Python (a DAG file being edited: the dag-processor reports its error)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def provider_modules(roots: Iterable[Path]) -> list[str]:
    """Every `airflow.providers.*` module a Python file under `roots` imports, sorted."""
    found = set()
    for root in roots:
        for path in root.rglob("*.py"):
            found.update(name for name in imported_modules(path) if name.startswith(PRELOADED_PREFIX))
    return sorted(found)


def preload(modules: Iterable[str]) -> list[str]:
    """Imports each module; returns those that failed (a DAG file importing one reports the error itself)."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
    return failed


def preload_for_dags() -> None:
    """Imports the providers the DAGs use; says which could not be (a DAG file importing one reports the error
    itself when it is parsed)."""
    failed = preload(provider_modules(PROJECT_ROOT / source for source in SOURCES))
    if failed:
        print(f"devstack.preloaded: not preloaded (each task imports them itself): {', '.join(failed)}",
              file=sys.stderr, flush=True)
