"""`make run GCP=emulators|real`: which GCP the DAGs talk to, remembered in the settings file zoomcamp.env.

The file (project root, git-ignored; ZOOMCAMP_SETTINGS_FILE points elsewhere) holds `KEY=value` lines:
ZOOMCAMP_GCP (the mode) and, for real mode, the course's four values GCP_PROJECT_ID, GCP_LOCATION,
GCP_BUCKET_NAME, GCP_DATASET. `make run GCP=<mode>` writes the mode into it, keeping every other line.

Emulators (the default): everything as devstack/settings.py sets it up. Real: no emulator runs, Airflow's
processes get no *_EMULATOR_HOST (removed even when inherited) and no google_cloud_default from
devstack — a keyless one is created in the metadata database only when none exists, so the provider
falls back to GOOGLE_APPLICATION_CREDENTIALS or Application Default Credentials — and the four values
as AIRFLOW_VAR_GCP_* (docs/gcp.md).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from include.zoomcamp import config
from include.zoomcamp.gcp import naming

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE_ENV = "ZOOMCAMP_SETTINGS_FILE"
MODE_KEY = config.GCP_MODE_ENV
VALUE_KEYS = tuple(config.GCP_DEFAULTS)
VALIDATORS = {
    config.GCP_PROJECT_ID_VAR: naming.validate_project,
    config.GCP_LOCATION_VAR: naming.validate_location,
    config.GCP_BUCKET_NAME_VAR: naming.validate_bucket,
    config.GCP_DATASET_VAR: naming.validate_dataset,
}
# Real mode's defaults when zoomcamp.env leaves a value out (the project: that of the credentials).
REAL_DEFAULTS = {config.GCP_LOCATION_VAR: "europe-west2", config.GCP_DATASET_VAR: "zoomcamp"}
BUCKET_SUFFIX = "-zoomcamp"
ANONYMOUS_CONN_ENV = "AIRFLOW_CONN_" + config.GCP_CONN_ID.upper()

TEMPLATE = """\
# zoomcamp.env: settings `make run` reads (git-ignored; docs/gcp.md). KEY=value lines, # comments.
# Which GCP the DAGs use: emulators (local, offline) or real (your project). `make run GCP=...` sets it.
{mode_key}={mode}
# Real mode only (the emulators always use zoomcamp-local); restart `make run` after a change. Defaults:
# GCP_PROJECT_ID the project of your credentials, GCP_BUCKET_NAME <project>-zoomcamp (bucket names are
# global), GCP_LOCATION europe-west2, GCP_DATASET zoomcamp.
# GCP_PROJECT_ID=my-project
# GCP_LOCATION=europe-west2
# GCP_BUCKET_NAME=my-project-zoomcamp
# GCP_DATASET=zoomcamp
"""
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


class SettingsError(ValueError):
    """zoomcamp.env cannot be used; the message names the file, the line and what to write."""


@dataclass(frozen=True)
class GcpSettings:
    mode: str = config.GCP_EMULATORS
    values: Mapping[str, str] = field(default_factory=dict)  # as written in the file (real mode)

    @property
    def real(self) -> bool:
        return self.mode == config.GCP_REAL


def settings_path() -> Path:
    return Path(os.environ.get(SETTINGS_FILE_ENV) or REPO_ROOT / "zoomcamp.env")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return re.sub(r"\s+#.*$", "", value)  # a trailing comment after an unquoted value


def check_mode(mode: str, where: str = "GCP") -> str:
    if mode not in config.GCP_MODES:
        raise SettingsError(f"{where}={mode!r}: expected one of {', '.join(config.GCP_MODES)}")
    return mode


def parse_settings(text: str, name: str = "zoomcamp.env") -> GcpSettings:
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise SettingsError(f"{name} line {number}: expected KEY=value, found {line.strip()!r}")
        key, value = match.group(1), _unquote(match.group(2))
        if key not in (MODE_KEY, *VALUE_KEYS):
            raise SettingsError(f"{name} line {number}: unknown setting {key!r}; the settings are "
                                f"{', '.join((MODE_KEY, *VALUE_KEYS))} (docs/gcp.md)")
        if key == MODE_KEY:
            if value:  # empty: the default
                check_mode(value, f"{name} line {number}: {MODE_KEY}")
        elif value:
            try:
                VALIDATORS[key](value)
            except naming.InvalidGcpName as exc:
                raise SettingsError(f"{name} line {number}: {exc}") from None
        found[key] = value
    mode = found.pop(MODE_KEY, "") or config.GCP_EMULATORS
    return GcpSettings(mode=mode, values={key: value for key, value in found.items() if value})


def read_settings(path: Path) -> GcpSettings:
    if not path.exists():
        return GcpSettings()
    return parse_settings(path.read_text(), str(path))


def remember_mode(path: Path, mode: str) -> None:
    """Write `ZOOMCAMP_GCP=<mode>` into the file (created from TEMPLATE), keeping every other line."""
    check_mode(mode)
    if not path.exists():
        path.write_text(TEMPLATE.format(mode_key=MODE_KEY, mode=mode))
        return
    lines = path.read_text().splitlines()
    wanted = f"{MODE_KEY}={mode}"
    for index, line in enumerate(lines):
        match = _LINE.match(line)
        if match and match.group(1) == MODE_KEY and not line.lstrip().startswith("#"):
            lines[index] = wanted
            break
    else:
        lines.append(wanted)
    path.write_text("\n".join(lines) + "\n")


def load(mode_argument: str | None, path: Path | None = None) -> GcpSettings:
    """The settings for this start: `GCP=<mode>` (remembered in the file) or the file's, else emulators."""
    path = path or settings_path()
    if mode_argument:
        check_mode(mode_argument)
        read_settings(path)  # a broken file is reported before it is rewritten
        remember_mode(path, mode_argument)
    return read_settings(path)


def resolve_values(settings: GcpSettings, credentials_project: str = "") -> dict[str, str]:
    """Real mode's four values: the file's, else the defaults (project: the credentials' own; may be '')."""
    values = dict(settings.values)
    project = values.get(config.GCP_PROJECT_ID_VAR) or credentials_project
    if project and config.GCP_PROJECT_ID_VAR not in values:
        try:
            naming.validate_project(project)
        except naming.InvalidGcpName:
            project = ""
    values[config.GCP_PROJECT_ID_VAR] = project
    for key, default in REAL_DEFAULTS.items():
        values.setdefault(key, default)
    if not values.get(config.GCP_BUCKET_NAME_VAR):
        values[config.GCP_BUCKET_NAME_VAR] = project + BUCKET_SUFFIX if project else ""
    return {key: values[key] for key in VALUE_KEYS}


def real_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The values as environment Variables (read before the stored ones): every DAG, the event ingest's
    parse-time watcher and asset included, sees the same."""
    return {f"AIRFLOW_VAR_{key}": value for key, value in values.items() if value}


def clean_inherited(environ: MutableMapping[str, str], mode: str = config.GCP_REAL) -> list[str]:
    """Remove from `environ` (inherited by Airflow's processes) what the other mode's devstack.env would have left in a
    shell that sourced it. Real mode: every *_EMULATOR_HOST, what emulator mode sets, and devstack's anonymous
    connection (not a connection of your own). Emulators: the AIRFLOW_VAR_GCP_* of real mode, which would
    send the DAGs to your project's names on the emulators."""
    from devstack.settings import emulator_environment

    if mode == config.GCP_EMULATORS:
        removed = [name for name in environ if name in {f"AIRFLOW_VAR_{key}" for key in VALUE_KEYS}]
        for name in removed:
            environ.pop(name)
        return removed
    emulator_only = set(emulator_environment("", "", "")) - {ANONYMOUS_CONN_ENV}
    removed = [name for name in environ if name.endswith("_EMULATOR_HOST") or name in emulator_only]
    conn = environ.get(ANONYMOUS_CONN_ENV, "")
    try:
        anonymous = json.loads(conn).get("extra", {}).get("is_anonymous") is True if conn.startswith("{") else False
    except ValueError:
        anonymous = False
    if anonymous:
        removed.append(ANONYMOUS_CONN_ENV)
    for name in removed:
        environ.pop(name, None)
    return removed


def prepare_connection(env: Mapping[str, str]) -> dict:
    """Run devstack.gcp_connection under Airflow's environment: creates the keyless google_cloud_default
    when none exists, and returns what its credentials are (devstack.gcp_connection.describe)."""
    from devstack.airflow import process_environment

    result = subprocess.run([sys.executable, "-m", "devstack.gcp_connection"], env=process_environment(dict(env)),
                            capture_output=True, text=True, cwd=REPO_ROOT)
    if result.returncode:
        return {"source": "unknown", "usable": False,
                "problem": f"could not read connection {config.GCP_CONN_ID!r}: {result.stderr.strip()[-500:]}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def describe_values(values: Mapping[str, str], settings: GcpSettings) -> str:
    parts = []
    for key in VALUE_KEYS:
        origin = "" if key in settings.values else " (default)"
        parts.append(f"{key}={values[key] or '(not set)'}{origin}")
    return ", ".join(parts)


def real_mode_report(settings: GcpSettings, values: Mapping[str, str], credentials: Mapping,
                     removed: list[str]) -> list[str]:
    """What `make run` prints in real mode: values, credentials (source and identity, never the key), warnings."""
    from include.zoomcamp.gcp.credentials import CredentialSource, unusable_message

    lines = [f"GCP: real — your project, no emulators ({describe_values(values, settings)}; "
             f"{settings_path()}, docs/gcp.md)"]
    if removed:
        lines.append(ignored_line(removed))
    if credentials.get("created"):
        lines.append(f"GCP: created connection {config.GCP_CONN_ID!r} without a key (none existed): it uses "
                     "GOOGLE_APPLICATION_CREDENTIALS or Application Default Credentials")
    source = CredentialSource(**{k: credentials.get(k, "") for k in ("source", "identity", "problem", "project")},
                              usable=bool(credentials.get("usable")))
    if source.usable:
        lines.append(f"GCP credentials: {source.describe()}")
    else:
        lines.append("WARNING: " + unusable_message(source, values[config.GCP_PROJECT_ID_VAR]))
    if not values[config.GCP_PROJECT_ID_VAR]:
        lines.append(f"WARNING: no GCP project: set GCP_PROJECT_ID in {settings_path()} and restart `make run`")
    return lines


def ignored_line(removed: list[str]) -> str:
    return f"GCP: ignored {', '.join(sorted(removed))} from the environment of `make run` (the other mode's)"


EMULATOR_MODE_LINE = ("GCP: emulators (offline). Your own project: `make run GCP=real` "
                      "(remembered in zoomcamp.env; docs/gcp.md)")
