"""What the copilot tells the model besides the request: Kestra's copilot is better than a bare chatbot
because it knows the current plugins; here, the operators of the providers installed in this
environment (read at run time, so always current), this project's conventions and one of its DAGs."""
from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[4]
CONVENTIONS_FILE = Path(__file__).with_name("conventions.md")
# A short project DAG that shows the conventions end to end (provider operators named in the file,
# the dependency chain at the bottom, shared default args, Variables read in templates, tags).
EXAMPLE_DAG_FILE = PROJECT_ROOT / "dags" / "07_gcp_setup.py"

# Always offered: the operators most DAGs need whatever the request.
CORE_OPERATORS = {
    "airflow.providers.standard.operators.python": ("PythonOperator",),
    "airflow.providers.standard.operators.bash": ("BashOperator",),
    "airflow.providers.standard.operators.empty": ("EmptyOperator",),
}
MAX_MODULES = 8  # provider modules picked by relevance, besides the core ones
MAX_OPERATORS_PER_MODULE = 20
MAX_CONTEXT_CHARS = 24_000  # the operator catalogue stays a bounded part of the prompt
MAX_SIGNATURE_CHARS = 1_600

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an and airflow are as at be by create dag data do does each file files flow for from in into is it kestra "
    "load loads of on or should that the then this to use using with".split()
)
# Words of a request that name a transfer's end by another word than its integration does.
_ALIASES = {
    "upload": "local", "file": "local", "files": "local", "csv": "local",
    "download": "http", "extract": "http", "url": "http", "web": "http",
    "storage": "gcs", "bucket": "gcs", "postgresql": "postgres", "warehouse": "bigquery",
}
_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-f]+>")


@dataclass(frozen=True)
class OperatorModule:
    module: str
    integration: str
    provider: str


def installed_operator_modules() -> list[OperatorModule]:
    """Every operator, transfer and sensor module the installed providers declare (their
    `apache_airflow_provider` entry points): what `pip install` put here, not what a model remembers."""
    found: dict[str, OperatorModule] = {}
    for entry in entry_points(group="apache_airflow_provider"):
        info = entry.load()()
        provider = info.get("package-name", entry.value)
        for kind in ("operators", "sensors"):
            for group in info.get(kind, []):
                for module in group.get("python-modules", []):
                    found.setdefault(module, OperatorModule(module, group.get("integration-name", ""), provider))
        for transfer in info.get("transfers", []):
            integration = f"{transfer.get('source-integration-name', '')} {transfer.get('target-integration-name', '')}"
            module = transfer["python-module"]
            found.setdefault(module, OperatorModule(module, integration, provider))
    return sorted(found.values(), key=lambda m: m.module)


def keywords(request: str) -> set[str]:
    words = {w for w in _WORD.findall(request.lower()) if len(w) > 2 and w not in _STOPWORDS}
    return words | {_ALIASES[w] for w in words if w in _ALIASES}


def _tokens(module: OperatorModule) -> set[str]:
    return set(_WORD.findall(f"{module.module} {module.integration}".lower().replace("_", " ")))


def relevant_modules(request: str, modules: Iterable[OperatorModule], limit: int = MAX_MODULES) -> list[str]:
    """The modules sharing most words with the request (their names and integrations), best first; among
    equals, rarer words weigh more ("bigquery" says more than "google")."""
    modules = list(modules)
    tokens = {m.module: _tokens(m) for m in modules}
    words = keywords(request)
    spread = {w: sum(w in t for t in tokens.values()) for w in words}
    scores = {}
    for name, module_tokens in tokens.items():
        matched = [w for w in words if w in module_tokens]
        if matched:
            scores[name] = (len(matched), sum(1 / spread[w] for w in matched))
    return sorted(scores, key=lambda n: (-scores[n][0], -scores[n][1], n))[:limit]


def operator_classes(module_name: str) -> list[type]:
    """The operators a module defines (classes deriving from BaseOperator, deprecated ones left out)."""
    from airflow.sdk import BaseOperator

    module = importlib.import_module(module_name)
    classes = []
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != module_name or not issubclass(cls, BaseOperator) or cls.__name__.startswith("_"):
            continue
        if "deprecated" in (inspect.getdoc(cls) or "")[:400].lower():
            continue
        classes.append(cls)
    return classes


def describe(cls: type) -> str:
    """One operator as the model should use it: import path, constructor signature, first doc line."""
    signature = _OBJECT_REPR.sub("...", str(inspect.signature(cls))).replace(" -> 'None'", "").replace(" -> None", "")
    if len(signature) > MAX_SIGNATURE_CHARS:
        signature = signature[:MAX_SIGNATURE_CHARS] + ", ...)"
    summary = (inspect.getdoc(cls) or "").strip().split("\n\n")[0].replace("\n", " ")
    return f"from {cls.__module__} import {cls.__name__}\n{cls.__name__}{signature}\n    # {summary}"


def operator_catalogue(request: str, max_chars: int = MAX_CONTEXT_CHARS) -> str:
    """The installed operators relevant to `request` plus the core ones, within `max_chars`; in each
    module, operators whose names share a word with the request come first."""
    words = keywords(request)
    chosen = list(CORE_OPERATORS) + [m for m in relevant_modules(request, installed_operator_modules())
                                     if m not in CORE_OPERATORS]
    entries, size = [], 0
    for module_name in chosen:
        try:
            classes = operator_classes(module_name)
        except ImportError:  # an optional dependency of that provider module is not installed here
            continue
        if module_name in CORE_OPERATORS:
            classes = [c for c in classes if c.__name__ in CORE_OPERATORS[module_name]]
        classes.sort(key=lambda c: (-sum(w in c.__name__.lower() for w in words), c.__name__))
        for cls in classes[:MAX_OPERATORS_PER_MODULE]:
            entry = describe(cls)
            if size + len(entry) > max_chars:
                return "\n\n".join(entries)
            entries.append(entry)
            size += len(entry) + 2
    return "\n\n".join(entries)


def conventions() -> str:
    return CONVENTIONS_FILE.read_text()


def example_dag() -> str:
    return EXAMPLE_DAG_FILE.read_text()
