"""The GitHub workflows: valid against GitHub's workflow schema (check-jsonschema's vendored copy, offline),
CI runs what a laptop runs plus actionlint, on a browser that works on ubuntu-latest, and the Astro
deploy takes its credentials from secrets only."""
from __future__ import annotations

import re
import subprocess
import sys

import yaml

from tests.conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def _workflow(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_workflows_are_valid_github_workflows_with_timeouts():
    files = sorted(str(f) for f in WORKFLOWS.glob("*.yml"))
    assert {f.rsplit("/", 1)[1] for f in files} >= {"ci.yml", "deploy.yml"}
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *files],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def test_ci_lints_and_tests_on_push_and_pull_request_with_python_311():
    ci = _workflow("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    steps = _steps(ci)
    uses = [step.get("uses", "") for step in steps]
    assert any(u.startswith("actions/checkout@") for u in uses)
    setup = next(step for step in steps if step.get("uses", "").startswith("actions/setup-python@"))
    assert str(setup["with"]["python-version"]) == "3.11"
    runs = [step.get("run", "") for step in steps]
    assert runs[-1].strip() == "bash .ci/run"  # what CI runs on this machine too
    ci_run = (REPO_ROOT / ".ci" / "run").read_text()
    assert "make lint" in ci_run and "make test" in ci_run


def test_ci_runs_actionlint_and_gives_the_browser_tests_playwrights_chromium():
    runs = [step.get("run", "") for step in _steps(_workflow("ci.yml"))]
    assert any(re.search(r"\bactionlint\b", run) and "requirements-ci.txt" not in run for run in runs)
    browser = next(run for run in runs if "playwright install" in run)
    assert "--with-deps chromium" in browser and "ZOOMCAMP_CHROMIUM=" in browser and "GITHUB_ENV" in browser
    order = [i for i, run in enumerate(runs) if "playwright install" in run or "bash .ci/run" in run]
    assert len(order) == 2  # the browser before the tests


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
