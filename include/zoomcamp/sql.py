"""SQL statements kept in `.sql` files, rendered with Jinja.

A module's fixed SQL lives in `sql/<name>.sql` next to it; `render(__file__, name, **values)` fills
its `{{ placeholders }}` with values the module generates in Python (table references, column
lists, rule expressions). A placeholder without a value raises, naming it and the file; a value no
placeholder uses raises too, so a misspelt keyword cannot pass unnoticed. Values are inserted as
they are (no escaping): callers pass SQL fragments they built, never user input.
"""
from __future__ import annotations

import functools
from pathlib import Path

import jinja2
import jinja2.meta

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=False,
    autoescape=False,
)


class SqlTemplateError(LookupError):
    """A `.sql` file is missing, or the values passed do not match its placeholders."""


def sql_path(package_file: str, name: str) -> Path:
    """`<directory of package_file>/sql/<name>.sql`."""
    return Path(package_file).resolve().parent / "sql" / f"{name}.sql"


@functools.cache
def _template(path: Path) -> tuple[jinja2.Template, frozenset[str]]:
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SqlTemplateError(f"SQL file {path} does not exist: create it, or fix the name passed to "
                               "render()") from None
    names = frozenset(jinja2.meta.find_undeclared_variables(_ENV.parse(source)))
    return _ENV.from_string(source), names


def render(package_file: str, name: str, **values) -> str:
    """The statement in `sql/<name>.sql` beside `package_file` (pass `__file__`), filled with `values`."""
    path = sql_path(package_file, name)
    template, names = _template(path)
    missing = sorted(names - values.keys())
    if missing:
        raise SqlTemplateError(f"{path}: no value for placeholder(s) {missing}; pass them to render()")
    unused = sorted(values.keys() - names)
    if unused:
        raise SqlTemplateError(f"{path}: value(s) {unused} given but the file has no such placeholder")
    try:
        return template.render(values)
    except jinja2.UndefinedError as exc:
        raise SqlTemplateError(f"{path}: {exc.message}; pass it to render()") from None
