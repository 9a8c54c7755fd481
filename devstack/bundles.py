"""Git-synced DAGs (Kestra's git sync, walkthrough 2_2 / course 2.6) as Airflow 3 DAG bundles.

One `GitDagBundle` per folder of a repository, like Kestra's system flow that syncs each folder into
a namespace. The repository URL, branch, folders and refresh interval are configuration; the token
is not: it lives in the `git` connection (`config.GIT_CONN_ID`), which each bundle names.

`dag_bundle_config` builds `[dag_processor] dag_bundle_config_list`; `environment` reads the
ZOOMCAMP_GIT_* settings behind `make run-git` (docs/operations.md#git-synced-dags).
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from include.zoomcamp import config

GIT_BUNDLE_CLASS = "airflow.providers.git.bundles.git.GitDagBundle"
LOCAL_BUNDLE_CLASS = "airflow.dag_processing.bundles.local.LocalDagBundle"
# Airflow's own name for the bundle of `[core] dags_folder` (its default dag_bundle_config_list).
LOCAL_BUNDLE_NAME = "dags-folder"
DEFAULT_BRANCH = "main"
DEFAULT_REFRESH_SECONDS = 60

REPO_ENV = "ZOOMCAMP_GIT_REPO"
BUNDLES_ENV = "ZOOMCAMP_GIT_BUNDLES"
BRANCH_ENV = "ZOOMCAMP_GIT_BRANCH"
REFRESH_ENV = "ZOOMCAMP_GIT_REFRESH"
LOCAL_DAGS_ENV = "ZOOMCAMP_GIT_LOCAL_DAGS"
CONFIG_LIST_ENV = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"

_BUNDLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class GitBundleConfigError(ValueError):
    """The Git bundle settings are unusable; the message names the setting and the problem."""


def parse_bundles(text: str) -> dict[str, str]:
    """`"flows/dev=dev.testing, flows/common=common, data-processing"` -> {folder: bundle name}.

    Entries are separated by commas or spaces; a folder without `=name` gives its bundle the
    folder's last part as name; `.` is the repository's root.
    """
    bundles: dict[str, str] = {}
    for entry in re.split(r"[,\s]+", text.strip()):
        if not entry:
            continue
        folder, _, name = entry.partition("=")
        folder = folder.strip().strip("/") or "."
        bundles[folder] = name.strip() or PurePosixPath(folder).name or "repo-root"
    return bundles


def _check_repo_url(repo_url: str) -> None:
    """Refuses a URL with user info (`https://<token>@host/...`, `https://user:password@host/...`): git would keep
    it in the clone's remote and `make run-git` would print it and write it to devstack.env. SSH URLs may name
    their login account (`ssh://git@host/...`), never a password."""
    if not repo_url:
        raise GitBundleConfigError(f"{REPO_ENV}: the repository URL is empty")
    parts = urlsplit(repo_url)
    if parts.password is not None or (parts.username is not None and parts.scheme != "ssh"):
        where = parts.netloc.rpartition("@")[2]
        raise GitBundleConfigError(
            f"{REPO_ENV}: the URL {parts.scheme}://{where}/... carries a user name, token or password; give the "
            f"repository's URL without it ({parts.scheme}://{where}{parts.path}) and put the token in the "
            f"`{config.GIT_CONN_ID}` connection (conn type git, password = token)")


def _check_folder(folder: str) -> None:
    path = PurePosixPath(folder)
    if path.is_absolute() or ".." in path.parts:
        raise GitBundleConfigError(f"{BUNDLES_ENV}: folder {folder!r} must be a path inside the repository")


def dag_bundle_config(repo_url: str, bundles: Mapping[str, str], *, branch: str = DEFAULT_BRANCH,
                      refresh_interval: int = DEFAULT_REFRESH_SECONDS, include_local_dags: bool = True,
                      git_conn_id: str = config.GIT_CONN_ID) -> list[dict]:
    """`[dag_processor] dag_bundle_config_list`: one GitDagBundle per `{folder: bundle name}` of the
    repository at `repo_url` (tracking `branch`, refreshed every `refresh_interval` seconds), after
    the local `dags/` folder's bundle when `include_local_dags`."""
    _check_repo_url(repo_url)
    if not bundles:
        raise GitBundleConfigError(f"{BUNDLES_ENV}: name at least one folder of the repository "
                                   f"(e.g. 'flows/dev=dev.testing,flows/common=common')")
    if not branch:
        raise GitBundleConfigError(f"{BRANCH_ENV}: the branch is empty")
    if refresh_interval < 1:
        raise GitBundleConfigError(f"{REFRESH_ENV}: the refresh interval must be at least 1 second, "
                                   f"got {refresh_interval}")
    names = list(bundles.values()) + ([LOCAL_BUNDLE_NAME] if include_local_dags else [])
    for name in names:
        if not _BUNDLE_NAME.match(name):
            raise GitBundleConfigError(f"{BUNDLES_ENV}: bundle name {name!r} must be letters, digits, '.', '_', '-'")
    if len(set(names)) < len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise GitBundleConfigError(f"{BUNDLES_ENV}: bundle name(s) {duplicates} used more than once"
                                   + (f" ({LOCAL_BUNDLE_NAME!r} is the local dags/ folder's)"
                                      if LOCAL_BUNDLE_NAME in duplicates else ""))
    local = {"name": LOCAL_BUNDLE_NAME, "classpath": LOCAL_BUNDLE_CLASS, "kwargs": {}}
    bundle_list = [local] if include_local_dags else []
    for folder, name in bundles.items():
        _check_folder(folder)
        kwargs = {"repo_url": repo_url, "tracking_ref": branch, "git_conn_id": git_conn_id,
                  "refresh_interval": refresh_interval}
        if folder != ".":
            kwargs["subdir"] = folder
        bundle_list.append({"name": name, "classpath": GIT_BUNDLE_CLASS, "kwargs": kwargs})
    return bundle_list


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise GitBundleConfigError(f"{name}: expected 1/0 (true/false), got {env[name]!r}")


def environment(env: Mapping[str, str]) -> dict[str, str]:
    """The Airflow settings the ZOOMCAMP_GIT_* variables in `env` ask for: none without
    ZOOMCAMP_GIT_REPO (Airflow's default: the local dags/ folder only)."""
    repo_url = env.get(REPO_ENV, "").strip()
    if not repo_url:
        return {}
    refresh = env.get(REFRESH_ENV, "").strip() or str(DEFAULT_REFRESH_SECONDS)
    if not refresh.isdigit():
        raise GitBundleConfigError(f"{REFRESH_ENV}: expected a number of seconds, got {refresh!r}")
    bundle_list = dag_bundle_config(repo_url, parse_bundles(env.get(BUNDLES_ENV, "")),
                                    branch=env.get(BRANCH_ENV, "").strip() or DEFAULT_BRANCH,
                                    refresh_interval=int(refresh),
                                    include_local_dags=_flag(env, LOCAL_DAGS_ENV, True))
    return {CONFIG_LIST_ENV: json.dumps(bundle_list)}


def describe(airflow_env: Mapping[str, str]) -> str:
    """`dags-folder (dags/), dev.testing (flows/dev of <url>@main, every 60 s)`, for `make run-git`'s banner."""
    parts = []
    for bundle in json.loads(airflow_env[CONFIG_LIST_ENV]):
        kwargs = bundle["kwargs"]
        where = (f"{kwargs.get('subdir', '.')} of {kwargs['repo_url']}@{kwargs['tracking_ref']}, "
                 f"every {kwargs['refresh_interval']} s") if bundle["classpath"] == GIT_BUNDLE_CLASS else "dags/"
        parts.append(f"{bundle['name']} ({where})")
    return ", ".join(parts)


def main() -> int:
    """`python -m devstack.bundles`: print the bundle list the ZOOMCAMP_GIT_* settings give, e.g. for
    a deployment's `[dag_processor] dag_bundle_config_list` (Helm values: config.dag_processor)."""
    import os
    import sys

    try:
        airflow_env = environment(os.environ)
    except GitBundleConfigError as exc:
        print(f"Git-synced DAGs: {exc}", file=sys.stderr)
        return 2
    if not airflow_env:
        print(f"Set {REPO_ENV} and {BUNDLES_ENV} (docs/operations.md#git-synced-dags)", file=sys.stderr)
        return 2
    print(json.dumps(json.loads(airflow_env[CONFIG_LIST_ENV]), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
