"""Git-synced DAGs (walkthrough 2_2, course 2.6): one GitDagBundle per folder of a repository.

The repository is a local bare one, served over loopback HTTP only to a client presenting the token
(the `git` connection's password, never in the bundle config). A real Airflow parses it next to the
local dags/ folder (make run-git's default), refreshing the Git bundles every few seconds.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devstack import bundles
from include.zoomcamp import config
from tests.conftest import artifacts_dir
from tests.fixtures.git_repo import BRANCH, GitHttpServer, GitRepo

TOKEN_USER, TOKEN = "x-access-token", "test-token-not-in-config"
# Folder of the repository -> bundle (Kestra: folder -> namespace).
FOLDERS = {"dev": "dev.testing", "common": "common"}
REFRESH_SECONDS = 3

# Trivial DAGs (no project imports): what a bundle needs must live in the bundle or the image.
DAG_TEMPLATE = '''from airflow.sdk import dag, task

{version_line}


@dag(dag_id="{dag_id}", schedule=None, tags=["walkthrough"])
def {dag_id}():
    @task
    def code_version():
        return CODE_VERSION

    code_version()


{dag_id}()
'''


def dag_file(dag_id: str, version_line: str = 'CODE_VERSION = "v1"') -> str:
    return DAG_TEMPLATE.format(dag_id=dag_id, version_line=version_line)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = GitRepo(tmp_path_factory.mktemp("git-bundles"))
    repo.commit({"dev/dev_hello.py": dag_file("git_dev_hello"),
                 "common/common_hello.py": dag_file("git_common_hello")}, "Two namespaces")
    return repo


@pytest.fixture(scope="module")
def git_server(repo):
    with GitHttpServer(repo, TOKEN_USER, TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def bundle_config(git_server) -> list[dict]:
    return bundles.dag_bundle_config(git_server.url, FOLDERS, branch=BRANCH, refresh_interval=REFRESH_SECONDS)


@pytest.fixture(scope="module")
def git_stack(services, bundle_config):
    """An Airflow of its own (`make run-git`'s configuration), beside the session's shared stack."""
    connection = {"conn_type": "git", "login": TOKEN_USER, "password": TOKEN}
    env = {bundles.CONFIG_LIST_ENV: json.dumps(bundle_config),
           "AIRFLOW_CONN_" + config.GIT_CONN_ID.upper(): json.dumps(connection)}
    log = artifacts_dir("airflow") / "airflow-git.log"
    log.unlink(missing_ok=True)
    with services.airflow_stack("airflow_git", log, env, own_home_and_port=True) as stack:
        for dag_id in ("git_dev_hello", "git_common_hello"):
            stack.wait_for_dag(dag_id, timeout=300)
        yield stack


@pytest.fixture(scope="module")
def stack(git_stack):
    return git_stack


def dag_details(stack, dag_id: str) -> dict:
    return stack.api("GET", f"/api/v2/dags/{dag_id}")


def import_errors(stack) -> list[dict]:
    return stack.api("GET", "/api/v2/importErrors?limit=100")["import_errors"]


def test_token_lives_in_the_connection_not_the_config(bundle_config, stack, git_server):
    assert [b["name"] for b in bundle_config] == [bundles.LOCAL_BUNDLE_NAME, "dev.testing", "common"]
    assert TOKEN not in json.dumps(bundle_config)
    # The server refuses clients without the token: Airflow cloned with the connection's.
    assert git_server.seen["authorised"] > 0
    # Cloned with this stack's data (devstack's bundle storage path), no token in the clone's config.
    storage = Path(stack.env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"])
    bare_config = (storage / "dev.testing" / "bare" / "config").read_text()
    assert git_server.url in bare_config and TOKEN not in bare_config
    assert dag_details(stack, "git_dev_hello")["bundle_name"] == "dev.testing"
    assert dag_details(stack, "git_common_hello")["bundle_name"] == "common"


def test_a_commit_adding_a_dag_shows_it_in_its_folders_bundle(stack, repo):
    sha = repo.commit({"dev/dev_added.py": dag_file("git_dev_added")}, "Add a DAG to dev")
    stack.wait_for_dag("git_dev_added", timeout=180)
    added = dag_details(stack, "git_dev_added")
    assert (added["bundle_name"], added["bundle_version"]) == ("dev.testing", sha)
    listed = stack.api("GET", "/api/v2/dags?dag_id_pattern=git_&limit=100")["dags"]
    assert {d["dag_id"]: d["bundle_name"] for d in listed if d["dag_id"].startswith("git_")} == {
        "git_dev_hello": "dev.testing", "git_common_hello": "common", "git_dev_added": "dev.testing"}


def test_a_broken_dag_is_an_import_error_of_its_bundle_only(stack, repo):
    broken = dag_file("git_common_hello") + "\nraise RuntimeError('broken on purpose')\n"
    repo.commit({"common/common_hello.py": broken}, "Break the common DAG")
    try:
        errors = stack.wait_until(lambda: [e for e in import_errors(stack) if e["bundle_name"] == "common"], 120,
                                  "the common bundle's import error")
        assert [e["filename"] for e in errors] == ["common_hello.py"]
        assert "broken on purpose" in errors[0]["stack_trace"]
        assert not [e for e in import_errors(stack)
                    if e["bundle_name"] in ("dev.testing", bundles.LOCAL_BUNDLE_NAME)]
        assert dag_details(stack, "git_common_hello")["has_import_errors"] is True
        assert dag_details(stack, "git_dev_hello")["has_import_errors"] is False
        # The other bundle's DAGs still run.
        run = stack.wait_for_run("git_dev_hello", stack.trigger("git_dev_hello"))
        assert run["state"] == "success"
    finally:  # the other tests find the common DAG as the repository started
        repo.commit({"common/common_hello.py": dag_file("git_common_hello")}, "Mend the common DAG")
        stack.wait_until(lambda: not [e for e in import_errors(stack) if e["bundle_name"] == "common"], 120,
                         "the common bundle without import error")


def test_each_run_records_the_commit_of_the_code_it_ran(stack, repo):
    first_sha = dag_details(stack, "git_dev_hello")["bundle_version"]
    # v2 comes from a module next to the DAG: the bundle's folder is on sys.path (parsing and tasks).
    sha = repo.commit({"dev/dev_release.py": 'CODE_VERSION = "v2"\n',
                       "dev/dev_hello.py": dag_file("git_dev_hello", "from dev_release import CODE_VERSION")},
                      "dev_hello v2, its version in a module of the bundle")
    assert sha != first_sha
    stack.wait_until(lambda: dag_details(stack, "git_dev_hello")["bundle_version"] == sha, 120,
                     "dev_hello parsed at the new commit")
    run_id = stack.trigger("git_dev_hello")
    run = stack.wait_for_run("git_dev_hello", run_id)
    assert (run["state"], run["bundle_version"]) == ("success", sha)
    # The worker ran that commit's code.
    assert stack.xcom("git_dev_hello", run_id, "code_version") == "v2"


# -- the config builder and the make run-git settings, without Airflow --------------------------
def test_one_git_bundle_per_folder():
    config = bundles.dag_bundle_config("https://github.com/o/flows.git", bundles.parse_bundles(
        "flows/dev=dev.testing, flows/common=common data-processing ."), branch="prod", refresh_interval=30,
        include_local_dags=False)
    assert [(b["name"], b["kwargs"].get("subdir")) for b in config] == [
        ("dev.testing", "flows/dev"), ("common", "flows/common"), ("data-processing", "data-processing"),
        ("repo-root", None)]
    assert {b["classpath"] for b in config} == {bundles.GIT_BUNDLE_CLASS}
    assert {(b["kwargs"]["repo_url"], b["kwargs"]["tracking_ref"], b["kwargs"]["refresh_interval"],
             b["kwargs"]["git_conn_id"]) for b in config} == {("https://github.com/o/flows.git", "prod", 30,
                                                               "git_default")}


def test_settings_switch_a_local_airflow_to_git_bundles():
    assert bundles.environment({}) == {}
    env = bundles.environment({bundles.REPO_ENV: "https://github.com/o/flows.git", bundles.BUNDLES_ENV: "dev"})
    config = json.loads(env[bundles.CONFIG_LIST_ENV])
    assert [(b["name"], b["kwargs"].get("tracking_ref"), b["kwargs"].get("refresh_interval")) for b in config] == [
        (bundles.LOCAL_BUNDLE_NAME, None, None), ("dev", bundles.DEFAULT_BRANCH, bundles.DEFAULT_REFRESH_SECONDS)]
    only_git = bundles.environment({bundles.REPO_ENV: "https://github.com/o/flows.git", bundles.BUNDLES_ENV: "dev",
                                    bundles.LOCAL_DAGS_ENV: "0", bundles.REFRESH_ENV: "10"})
    assert [b["kwargs"]["refresh_interval"] for b in json.loads(only_git[bundles.CONFIG_LIST_ENV])] == [10]


@pytest.mark.parametrize("settings, problem", [
    ({bundles.REPO_ENV: "https://github.com/o/flows.git"}, "name at least one folder"),
    ({bundles.REPO_ENV: "https://github.com/o/flows.git", bundles.BUNDLES_ENV: "a=x,b=x"}, r"\['x'\] used more"),
    ({bundles.REPO_ENV: "https://github.com/o/flows.git", bundles.BUNDLES_ENV: "dags=dags-folder"},
     "local dags/ folder's"),
    ({bundles.REPO_ENV: "https://github.com/o/flows.git", bundles.BUNDLES_ENV: "../up=up"}, "inside the repository"),
    ({bundles.REPO_ENV: "https://github.com/o/flows.git", bundles.BUNDLES_ENV: "dev", bundles.REFRESH_ENV: "soon"},
     "number of seconds"),
    ({bundles.REPO_ENV: "https://github.com/o/flows.git", bundles.BUNDLES_ENV: "dev", bundles.LOCAL_DAGS_ENV: "maybe"},
     "expected 1/0"),
])
def test_unusable_settings_are_refused_by_name(settings, problem):
    with pytest.raises(bundles.GitBundleConfigError, match=problem):
        bundles.environment(settings)


CREDENTIAL_URLS = {
    "token-as-user": ("https://ghp_TokenAsUserName0123456789@github.com/o/flows.git", "ghp_TokenAsUserName0123456789"),
    "user-and-password": ("https://me:pw-in-url-1@github.com/o/flows.git", "pw-in-url-1"),
    "user-and-token": ("https://x-access-token:ghs_InstallToken99@github.com/o/flows.git", "ghs_InstallToken99"),
    "user-only": ("http://ana.lopez@git.example.com:3000/o/flows.git", "ana.lopez"),
    "empty-password": ("https://ghp_EmptyPassword777:@github.com/o/flows.git", "ghp_EmptyPassword777"),
    "ssh-password": ("ssh://git:ssh-pw-2@github.com/o/flows.git", "ssh-pw-2"),
}


@pytest.mark.parametrize("url, secret", CREDENTIAL_URLS.values(), ids=CREDENTIAL_URLS.keys())
def test_a_url_with_user_info_is_refused_without_repeating_it(url, secret):
    with pytest.raises(bundles.GitBundleConfigError) as refused:
        bundles.environment({bundles.REPO_ENV: url, bundles.BUNDLES_ENV: "dev"})
    message = str(refused.value)
    assert "carries a user name, token or password" in message and f"`{config.GIT_CONN_ID}` connection" in message
    assert secret not in message
    assert "/o/flows.git" in message  # the URL to use instead


def test_an_ssh_url_may_name_its_login_account():
    env = bundles.environment({bundles.REPO_ENV: "ssh://git@github.com/o/flows.git", bundles.BUNDLES_ENV: "dev"})
    assert "ssh://git@github.com/o/flows.git" in env[bundles.CONFIG_LIST_ENV]


def test_make_run_git_with_a_token_in_the_url_stops_before_anything_starts(tmp_path):
    """Nothing of the URL is printed, written to .env, or cloned: devstack exits naming the connection."""
    import subprocess
    import sys

    token = "ghp_NeverPrintedOrWritten0123456789"
    session_keys = ("AIRFLOW", "ZOOMCAMP_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(session_keys)}
    env.update({bundles.REPO_ENV: f"https://{token}@github.com/o/flows.git", bundles.BUNDLES_ENV: "dev",
                "ZOOMCAMP_DATA_DIR": str(tmp_path / "data"), "ZOOMCAMP_ENV_FILE": str(tmp_path / ".env")})
    repo_root = Path(bundles.__file__).parent.parent
    for command in ("services", "run"):
        result = subprocess.run([sys.executable, "-m", "devstack", command], env=env, capture_output=True, text=True,
                                cwd=repo_root, timeout=120)
        assert result.returncode != 0
        assert f"`{config.GIT_CONN_ID}` connection" in result.stderr
        assert token not in result.stdout + result.stderr
    assert not (tmp_path / ".env").exists() and not (tmp_path / "data").exists()


def test_the_bundle_list_is_printed_for_a_deployment():
    import subprocess
    import sys

    env = {**os.environ, bundles.REPO_ENV: "https://github.com/o/flows.git",
           bundles.BUNDLES_ENV: "flows/dev=dev.testing", bundles.LOCAL_DAGS_ENV: "0"}
    repo_root = Path(bundles.__file__).parent.parent
    printed = subprocess.run([sys.executable, "-m", "devstack.bundles"], env=env, capture_output=True, text=True,
                             check=True, cwd=repo_root).stdout
    assert json.loads(printed) == json.loads(bundles.environment(env)[bundles.CONFIG_LIST_ENV])
    refused = subprocess.run([sys.executable, "-m", "devstack.bundles"], env={**env, bundles.BUNDLES_ENV: ""},
                             capture_output=True, text=True, cwd=repo_root)
    assert refused.returncode == 2 and "name at least one folder" in refused.stderr


def test_a_bundle_at_this_repositorys_root_parses_dags_only():
    """The Helm deployment's bundle is this repository's root (dags/ and include/ at one commit):
    its .airflowignore leaves the dag-processor dags/ alone, not the tests' or tools' modules."""
    from airflow.utils.file import find_dag_file_paths

    root = Path(bundles.__file__).parent.parent
    found = {Path(p).relative_to(root) for p in find_dag_file_paths(root, safe_mode=True)}
    assert found == {p.relative_to(root) for p in (root / "dags").glob("*.py")}
