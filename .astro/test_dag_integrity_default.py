"""Every DAG file imports without errors: what `astro dev parse` runs, rewritten for Airflow 3.3.

Astro's template builds `DagBag(include_examples=False)`, which Airflow 3.3 rejects (its DagBag
has no `include_examples`; example DAGs are a separate bundle, off with AIRFLOW__CORE__LOAD_EXAMPLES).
As in the template, Variables and Connections read at parse time get stand-in values, but only
while the DAG files are imported (the rest of a test session sees the real ones). The DAGs read
neither at parse (tests/test_dag_integrity.py refuses any network or database access at parse).
A file listed in `.astro/dag_integrity_exceptions.txt` may fail to import.
Runs standalone (`pytest .astro/test_dag_integrity_default.py`, no services needed) and in `make test`.
"""
from __future__ import annotations

import logging
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = PROJECT_ROOT / "dags"
EXCEPTIONS_FILE = PROJECT_ROOT / ".astro" / "dag_integrity_exceptions.txt"

if str(PROJECT_ROOT) not in sys.path:  # the DAGs import `include.…`, as in an Astro image
    sys.path.insert(0, str(PROJECT_ROOT))

_NO_DEFAULT = object()


def _mocked_variable(key, default=_NO_DEFAULT, deserialize_json=False, **kwargs):
    default = kwargs.get("default_var", default)
    print(f"Variable {key!r} read at parse time: returning a mocked value")
    if default is not _NO_DEFAULT:
        return default
    return {} if deserialize_json else f"MOCKED_{key.upper()}_VALUE"


def _mocked_connection(conn_id, *args, **kwargs):
    from airflow.sdk import Connection

    print(f"Connection {conn_id!r} read at parse time: returning an empty Connection")
    return Connection(conn_id=conn_id, conn_type="generic")


@contextmanager
def parse_time_stand_ins():
    """Variables and Connections read while importing DAG files get stand-in values."""
    from airflow.sdk import Connection, Variable

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(Variable, "get", _mocked_variable))
        stack.enter_context(mock.patch.object(Connection, "get", _mocked_connection))
        yield


@contextmanager
def suppress_logging(namespace: str):
    logger = logging.getLogger(namespace)
    old_value = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = old_value


def exceptions() -> set[str]:
    """Paths (relative to the project) allowed to fail to import; `#` starts a comment."""
    if not EXCEPTIONS_FILE.exists():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in EXCEPTIONS_FILE.read_text().splitlines())
    return {line for line in lines if line}


def _relative(path: str) -> str:
    path = Path(path)
    if not path.is_absolute():
        path = DAGS_FOLDER / path
    return path.resolve().relative_to(PROJECT_ROOT).as_posix()


@pytest.fixture(scope="module")
def import_errors() -> dict[str, str]:
    from airflow.dag_processing.dagbag import DagBag

    with suppress_logging("airflow"), parse_time_stand_ins():
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
    return {_relative(path): error.strip() for path, error in bag.import_errors.items()}


DAG_FILES = sorted(p.relative_to(PROJECT_ROOT).as_posix() for p in DAGS_FOLDER.rglob("*.py"))


@pytest.mark.parametrize("rel_path", DAG_FILES)
def test_file_imports(rel_path, import_errors):
    error = import_errors.get(rel_path)
    if error and rel_path not in exceptions():
        raise AssertionError(f"{rel_path} failed to import with message\n{error}")


def test_no_import_errors_elsewhere(import_errors):
    """Import errors of files outside the list above (e.g. zipped DAGs) are failures too."""
    others = {path: error for path, error in import_errors.items()
              if path not in DAG_FILES and path not in exceptions()}
    assert not others, others
