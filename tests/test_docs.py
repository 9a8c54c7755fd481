"""The README and docs/ as a reader follows them: every relative link reaches a file and, where it names one,
a heading of that file; every command of a shell block names a `make` target the Makefile has, a `python -m`
module that imports, and an `airflow` subcommand with flags that Airflow's own CLI parser knows."""
from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import shlex
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PAGES = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```", re.M | re.S)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
DAG_FILES = sorted((REPO_ROOT / "dags").glob("*.py"))
DETAILS = re.compile(r"^Details: (\S+)$", re.M)


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO_ROOT))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        if m := re.match(r"#{1,6} (.+)", line):
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def relative_links(page: Path):
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if not re.match(r"[a-z]+:", target):
            yield target


def link_problem(page: Path, target: str) -> str | None:
    """What is wrong with a relative link of `page` (a file, or a file and its heading), None if nothing."""
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    if not file.exists():
        return f"{target}: no file {file}"
    if anchor and file.suffix == ".md" and anchor not in anchors(file):
        return f"{target}: no heading with anchor #{anchor} in {page_id(file)}"
    return None


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_reaches_its_file_and_heading(page):
    broken = [problem for target in relative_links(page) if (problem := link_problem(page, target))]
    assert not broken, "\n".join(broken)


def test_every_dag_files_details_line_reaches_its_file_and_heading():
    """A DAG file's docstring (its DAG's doc_md) ends with `Details: docs/<page>.md#<heading>`."""
    broken = []
    for dag_file in DAG_FILES:
        docstring = ast.get_docstring(ast.parse(dag_file.read_text())) or ""
        targets = DETAILS.findall(docstring)
        if not targets or not docstring.rstrip().endswith(targets[-1]):
            broken.append(f"{dag_file.name}: its docstring does not end with a `Details: <page>#<heading>` line")
        for target in targets:
            if problem := link_problem(REPO_ROOT / "README.md", target):
                broken.append(f"{dag_file.name}: {problem}")
    assert DAG_FILES and not broken, "\n".join(broken)


def shell_commands(page: Path):
    """Each command of the page's shell blocks as a list of words (continuations joined, comments dropped)."""
    for block in SHELL_BLOCK.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            for command in re.split(r"\s*(?:&&|\|\||;|\|)\s*", line):
                words = shlex.split(command, comments=True)
                while words and re.match(r"[A-Z_][A-Z0-9_]*=", words[0]):  # VAR=value before the command
                    words.pop(0)
                if words:
                    yield words


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*):", (REPO_ROOT / "Makefile").read_text(), re.M))


@cache
def airflow_parser() -> argparse.ArgumentParser:
    from airflow.cli import cli_parser

    return cli_parser.get_parser()


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def airflow_problem(words: list[str]) -> str | None:
    """None when Airflow's CLI knows the subcommand path and each --flag of `words` (after `airflow`)."""
    parser, path = airflow_parser(), ["airflow"]
    rest = list(words)
    while rest and (choices := subparsers(parser)):
        if rest[0] not in choices:
            return f"`{' '.join(path)}` has no subcommand {rest[0]!r}"
        path.append(rest.pop(0))
        parser = choices[path[-1]]
    flags = {option for action in parser._actions for option in action.option_strings}
    unknown = [w.split("=")[0] for w in rest if w.startswith("-") and w.split("=")[0] not in flags]
    return f"`{' '.join(path)}` has no option {', '.join(unknown)}" if unknown else None


def command_problem(words: list[str]) -> str | None:
    program = Path(words[0]).name
    if program == "make":
        targets = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        missing = [t for t in targets if t not in make_targets()]
        return f"the Makefile has no target {', '.join(missing)}" if missing else None
    if program.startswith("python") and words[1:2] == ["-m"]:
        module = words[2]
        if module.split(".")[0] in ("pip", "venv", "http"):
            return None
        return None if importlib.util.find_spec(module) else f"no module {module}"
    if program == "airflow":
        if not words[0].startswith(".venv/") and words[0] != "airflow":
            return None
        return airflow_problem(words[1:])
    return None


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_shell_command_names_a_make_target_module_or_airflow_command_that_exists(page):
    problems = [f"{' '.join(words)}: {problem}" for words in shell_commands(page)
                if (problem := command_problem(words))]
    assert not problems, "\n".join(problems)


def test_the_checks_catch_a_missing_target_module_subcommand_flag_and_anchor(tmp_path):
    assert command_problem(["make", "no-such-target"]) == "the Makefile has no target no-such-target"
    assert command_problem([".venv/bin/python", "-m", "devstack.no_such_module"]) == \
        "no module devstack.no_such_module"
    assert command_problem(["airflow", "dags", "no-such"]) == "`airflow dags` has no subcommand 'no-such'"
    assert command_problem(["airflow", "dags", "trigger", "x", "--no-such-flag"]) == \
        "`airflow dags trigger` has no option --no-such-flag"
    assert command_problem(["airflow", "dags", "trigger", "x", "--conf", "{}"]) is None
    page = tmp_path / "page.md"
    page.write_text("# A heading, with `code`\n\n## Again\n\n## Again\n")
    assert anchors(page) == {"a-heading-with-code", "again", "again-1"}
