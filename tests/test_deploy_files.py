"""The Docker Compose and Astro files cannot run here (no Docker engine); check they agree with the code."""
from __future__ import annotations

import json
import re

import yaml

from include.zoomcamp import config
from tests.conftest import REPO_ROOT

POOLS = ((config.TAXI_LOAD_POOL, config.DEFAULT_TAXI_LOAD_SLOTS, config.TAXI_LOAD_POOL_DOC),
         (config.YELLOW_CAB_RAW_LOAD_POOL, config.YELLOW_CAB_RAW_LOAD_SLOTS, config.YELLOW_CAB_RAW_LOAD_POOL_DOC))


def _compose():
    return yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text())


def test_compose_runs_airflow_33_with_course_postgres_and_pgadmin():
    services = _compose()["services"]
    assert {"airflow", "pgdatabase", "pgadmin"} <= set(services)
    assert services["airflow"]["image"].startswith("apache/airflow:3.3.")
    assert services["pgdatabase"]["image"] == "postgres:18"
    env = services["pgdatabase"]["environment"]
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == ("root", "root", "ny_taxi")
    init = (REPO_ROOT / "docker" / "postgres-init").glob("*.sql")
    assert any("CREATE DATABASE airflow" in p.read_text() for p in init)


def test_compose_uses_the_same_connection_variables_and_code():
    airflow = _compose()["services"]["airflow"]
    env = airflow["environment"]
    conn = json.loads(env["AIRFLOW_CONN_" + config.POSTGRES_CONN_ID.upper()])
    login = (conn["conn_type"], conn["login"], conn["password"], conn["schema"])
    assert login == ("postgres", "root", "root", "ny_taxi")
    # No Variables in the environment: they would hide what a user sets in the UI.
    assert not [name for name in env if name.startswith("AIRFLOW_VAR_")]
    for name, slots, doc in POOLS:
        assert f"airflow pools set {name} {slots} '{doc}'" in " ".join(airflow["command"])
    mounts = {m.split(":")[0] for m in airflow["volumes"]}
    assert {"./dags", "./include", "./plugins", "./requirements.txt"} <= mounts


def test_astro_files_agree_with_local_setup():
    assert re.search(r"^FROM \S*runtime:3\.3", (REPO_ROOT / "Dockerfile").read_text(), re.M)
    assert yaml.safe_load((REPO_ROOT / ".astro" / "config.yaml").read_text())["project"]["name"]
    settings = yaml.safe_load((REPO_ROOT / "airflow_settings.yaml").read_text())["airflow"]
    assert [c["conn_id"] for c in settings["connections"]] == [config.POSTGRES_CONN_ID]
    pools = {p["pool_name"]: (p["pool_slot"], p["pool_description"]) for p in settings["pools"]}
    assert pools == {name: (slots, doc) for name, slots, doc in POOLS}
    variables = {v["variable_name"]: v["variable_value"] for v in settings["variables"]}
    assert variables[config.TAXI_DATA_BASE_URL_VAR] == config.DEFAULT_TAXI_DATA_BASE_URL


def test_runtime_requirements_are_pinned_and_in_the_local_install():
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    runtime = [line for line in lines if line and not line.startswith("#")]
    assert all("==" in line for line in runtime)
    assert "-r requirements.txt" in (REPO_ROOT / "requirements-local.txt").read_text()
