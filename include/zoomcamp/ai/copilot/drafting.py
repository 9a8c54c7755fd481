"""The copilot's loop: ask Gemini for a DAG file with the context, validate it for real, hand the errors
back for another round (at most MAX_ROUNDS), and write a valid draft outside `dags/`."""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from include.zoomcamp.ai.copilot import context
from include.zoomcamp.ai.copilot.validation import NoCodeBlock, Validation, extract_code, validate
from include.zoomcamp.errors import PermanentError

log = logging.getLogger(__name__)

MAX_ROUNDS = 3
# The course's exercise prompt (2.5.2/2.5.3), "Kestra flow" read as "Airflow DAG".
EXERCISE_REQUEST = (
    "Create an Airflow DAG that loads NYC taxi data from a CSV file to BigQuery. "
    "The DAG should extract data, upload to GCS, and load to BigQuery."
)
SYSTEM = (
    "You write Apache Airflow 3.3 DAG files for the project described below. Answer with one complete "
    "Python file in a single ```python code block. Use only the operators listed under 'Installed "
    "operators', with the parameters of their signatures there: they are what is installed here. "
    "Follow the project's conventions and the style of its example DAG."
)

Generate = Callable[[str, str], str]  # (prompt, system instruction) -> the model's answer


@dataclass(frozen=True)
class Context:
    operators: str
    conventions: str
    example: str

    @classmethod
    def for_request(cls, request: str) -> Context:
        return cls(context.operator_catalogue(request), context.conventions(), context.example_dag())


@dataclass(frozen=True)
class Draft:
    path: str
    code: str
    dag_ids: list[str]
    rounds: int
    import_checked: bool
    validation: str  # how it was checked: "import-checked in the sandbox" or "not import-checked (why)"


def build_prompt(request: str, ctx: Context, previous: str | None = None, errors: list[str] | None = None) -> str:
    """Round 1: the context and the request. Later rounds add the previous draft and why it was rejected."""
    parts = [
        f"## Installed operators (this environment's providers)\n\n{ctx.operators}",
        f"## Project conventions\n\n{ctx.conventions}",
        f"## Example DAG of this project\n\n```python\n{ctx.example}```",
        f"## Request\n\n{request}",
    ]
    if previous is not None:
        listed = "\n".join(f"- {error}" for error in errors or [])
        parts.append(
            f"## Your previous draft\n\n```python\n{previous}```\n\n"
            f"## It failed validation with these errors\n\n{listed}\n\n"
            "Return the corrected complete file in one ```python code block."
        )
    return "\n\n".join(parts)


class DraftRequestError(PermanentError):
    """The copilot cannot draft as asked: an empty request, or a drafts folder where drafts would run unreviewed."""


class NoValidDraft(PermanentError):
    """Gemini gave no draft that passed validation within MAX_ROUNDS rounds; the message lists the last errors."""


def check_drafts_dir(drafts_dir: str, dags_folders: list[Path]):
    """The drafts' folder as an ObjectStoragePath (a local path or URL: Variable copilot_drafts_dir); a local
    one inside a DAGs folder is refused: drafts there would run unreviewed."""
    from include.zoomcamp import config, storage

    target = storage.path(drafts_dir, variable=config.COPILOT_DRAFTS_DIR_VAR)
    if storage.is_local(target):
        local = Path(target.path).expanduser().resolve()
        for folder in dags_folders:
            if local.is_relative_to(folder.resolve()):
                raise DraftRequestError(
                    f"the drafts folder {local} is inside the DAGs folder {folder}: drafts would run unreviewed; "
                    "set Variable copilot_drafts_dir to a folder outside it"
                )
    return target


def draft_dag(request: str, drafts_dir: str, generate: Generate, *, dags_folders: list[Path],
              max_rounds: int = MAX_ROUNDS) -> Draft:
    request = (request or "").strip()
    if not request:
        raise DraftRequestError("param `request` is empty: describe the DAG to draft in plain language")
    target_dir = check_drafts_dir(drafts_dir, dags_folders)
    ctx = Context.for_request(request)
    offered = re.findall(r"^from \S+ import (\w+)$", ctx.operators, re.MULTILINE)
    log.info("Context: %s installed operators (%s characters: %s), the conventions and example DAG %s",
             len(offered), len(ctx.operators), ", ".join(offered), context.EXAMPLE_DAG_FILE.name)
    previous, errors = None, []
    for round_no in range(1, max_rounds + 1):
        answer = generate(build_prompt(request, ctx, previous, errors), SYSTEM)
        try:
            code = extract_code(answer)
        except NoCodeBlock as problem:
            previous, errors = answer + "\n", [str(problem)]
        else:
            result = validate(code)
            if result.ok:
                path = write_draft(target_dir, request, result)
                log.info("Round %s: valid draft (%s) with DAG(s) %s written to %s (review it before copying "
                         "it into dags/)", round_no, result.checked_as, ", ".join(result.dag_ids) or "-", path)
                return Draft(path, code, result.dag_ids, round_no, result.import_checked, result.checked_as)
            previous, errors = code, result.errors
        log.warning("Round %s of %s: the draft failed validation:\n%s", round_no, max_rounds,
                    "\n".join(f"- {e}" for e in errors))
    raise NoValidDraft(
        f"no valid DAG after {max_rounds} rounds; the last draft's errors:\n" + "\n".join(f"- {e}" for e in errors)
    )


def write_draft(target_dir, request: str, draft: Validation) -> str:
    """`<dag_id>-<UTC time>.py` under `target_dir` (an ObjectStoragePath), written whole or not at all, under a
    header naming the request and how the draft was checked; returns where (a local path or a URL)."""
    from include.zoomcamp import storage

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", (draft.dag_ids or ["draft"])[0]).strip("._") or "draft"
    header = "# Drafted by the ai_copilot DAG; review it before copying it into dags/.\n"
    header += f"# Validation: {draft.checked_as}.\n# Request:\n"
    header += "".join(f"#   {line}\n" for line in request.splitlines())
    location = target_dir / f"{slug}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}.py"
    return storage.shown(storage.write_text(location, header + draft.code))


def draft_with_gemini(request: str, drafts_dir: str) -> dict:
    """The ai_copilot task: the loop on the `gemini_default` connection; its XCom is the draft's path, code
    and how it was checked. Fails first, naming the connection, when it has no usable key; logs the tokens
    of every round."""
    from airflow.sdk.configuration import conf

    from include.zoomcamp.ai import gemini

    settings = gemini.gemini_settings()
    used = []

    def ask(prompt: str, system: str) -> str:
        text, usage = gemini.generate(prompt, system, settings=settings)
        used.append(usage.total_tokens)
        return text

    dags_folders = [Path(conf.get("core", "dags_folder")), context.PROJECT_ROOT / "dags"]
    try:
        draft = draft_dag(request, drafts_dir, ask, dags_folders=dags_folders)
    finally:
        log.info("Gemini tokens used by the copilot: %s in %s call(s)", sum(used), len(used))
    return {"path": draft.path, "dag_ids": draft.dag_ids, "rounds": draft.rounds, "code": draft.code,
            "import_checked": draft.import_checked, "validation": draft.validation}
