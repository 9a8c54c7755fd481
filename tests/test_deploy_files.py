"""Docker Compose and the Astro CLI name what `make run` names: one source (devstack/deployment.py), checked here.

No Docker engine runs here. The compose files are validated with what runs without one: Compose's own
configuration parser (Debian's docker-compose 1.29, `config`; Docker's `docker compose config` too where that
plugin is installed) in the `deploy` tier, and the Compose Specification's JSON schema (check-jsonschema's
vendored copy) with the rest. The Astro override is validated merged into a stand-in of the Astro CLI's own
compose project (its Airflow 3 template's services and network).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from devstack import deployment, settings, system_packages
from devstack.ports import PORTS, default_port
from include.zoomcamp import config
from tests.conftest import REPO_ROOT

AIRFLOW_SERVICES = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker")
LONG_RUNNING = {"pgdatabase", "gcp-emulators", "redis", *AIRFLOW_SERVICES} - {"airflow-init"}
EMULATOR_PORT_KEYS = ("pubsub_port", "gcs_port", "bq_port", "bq_grpc_port")
GCP_ENV = {"GCP_PROJECT_ID": "my-zoomcamp-123", "GCP_BUCKET_NAME": "my-zoomcamp-123-zoomcamp",
           "GOOGLE_APPLICATION_CREDENTIALS": "/dev/null"}
# The Astro CLI's compose project for Airflow 3 (its template's services and network), as the override meets it.
ASTRO_STANDIN = {
    "networks": {deployment.ASTRO_NETWORK: {"driver": "bridge"}},
    "services": {name: {"image": "zoomcamp-astro/airflow:latest", "command": ["airflow", name.replace("-", " ")],
                        "networks": [deployment.ASTRO_NETWORK],
                        "environment": {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}}
                 for name in ("postgres", "db-migration", *deployment.ASTRO_AIRFLOW_SERVICES)},
}


def _yaml(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / name).read_text())


def _env_file(name: str) -> dict[str, str]:
    lines = (REPO_ROOT / name).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_generated_files_are_what_devstack_deployment_writes():
    result = subprocess.run([sys.executable, "-m", "devstack.deployment", "--check"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert deployment.differing() == []


def test_a_stale_generated_file_is_named(tmp_path):
    for name, render in deployment.FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(render())
    (tmp_path / "airflow_settings.yaml").write_text(deployment.airflow_settings_yaml().replace("taxi_loads", "x"))
    assert deployment.differing(tmp_path) == ["airflow_settings.yaml"]


def test_compose_publishes_make_runs_ports_and_names_its_services_as_the_generated_env():
    services = _yaml("docker-compose.yaml")["services"]
    assert {"pgdatabase", "pgadmin", "gcp-emulators", "redis", *AIRFLOW_SERVICES} == set(services)
    published = {int(port.split(":")[1]) for port in services["gcp-emulators"]["ports"]}
    assert published == {default_port(key) for key in EMULATOR_PORT_KEYS}
    assert all(port.split(":")[1] == port.split(":")[2] for port in services["gcp-emulators"]["ports"])
    pg_port, api_port = default_port("pg_port"), default_port("api_port")
    assert services["pgdatabase"]["ports"] == [f"127.0.0.1:{pg_port}:{deployment.CONTAINER_POSTGRES_PORT}"]
    assert services[deployment.API_SERVICE]["ports"] == [f"127.0.0.1:{api_port}:{deployment.API_PORT}"]
    assert all(port.startswith("127.0.0.1:") for service in services.values() for port in service.get("ports", []))
    assert deployment.POSTGRES_SERVICE in services and deployment.EMULATORS_SERVICE in services
    assert deployment.REDIS_SERVICE in services

    env = _env_file("docker/airflow.env")
    assert env == deployment.container_environment()
    assert env["STORAGE_EMULATOR_HOST"] == f"http://{deployment.EMULATORS_SERVICE}:{default_port('gcs_port')}"
    assert env["BIGQUERY_EMULATOR_HOST"] == f"http://{deployment.EMULATORS_SERVICE}:{default_port('bq_port')}"
    assert env["PUBSUB_EMULATOR_HOST"] == f"{deployment.EMULATORS_SERVICE}:{default_port('pubsub_port')}"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://{deployment.REDIS_SERVICE}:{default_port('redis_port')}/0"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(f"http://{deployment.API_SERVICE}:")
    ny_taxi = json.loads(env["AIRFLOW_CONN_" + config.POSTGRES_CONN_ID.upper()])
    assert (ny_taxi["host"], ny_taxi["port"]) == (deployment.POSTGRES_SERVICE, deployment.CONTAINER_POSTGRES_PORT)


def test_compose_builds_airflow_from_the_project_and_installs_nothing_at_start():
    compose = _yaml("docker-compose.yaml")
    services = compose["services"]
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"] == "." and service["env_file"] == ["docker/airflow.env"], name
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in service["environment"], name
        assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD" in service["environment"], name  # no password in the file
        named = {volume.split(":")[0] for volume in service["volumes"] if not volume.startswith("./")}
        assert named <= set(compose["volumes"]), name
        code = [volume for volume in service["volumes"] if volume.startswith("./")]
        assert all(volume.endswith(":ro") for volume in code), name
    assert services["gcp-emulators"]["build"]["dockerfile"] == deployment.EMULATORS_DOCKERFILE
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"], name
    assert services["airflow-worker"]["profiles"] == services["redis"]["profiles"] == ["celery"]
    assert services["airflow-worker"]["deploy"]["replicas"] == "${AIRFLOW_WORKERS:-2}"
    for name in ("airflow-scheduler", "airflow-worker"):  # stopped before the api-server their tasks report to
        assert services[name]["depends_on"]["airflow-apiserver"] == {"condition": "service_started"}, name
        assert services[name]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}, name
    assert services["airflow-init"]["command"] == ["python", "-m", "devstack.container", "init"]


def test_the_course_postgres_is_the_same_in_compose_and_the_astro_override():
    compose = _yaml("docker-compose.yaml")["services"][deployment.POSTGRES_SERVICE]
    astro = _yaml("docker-compose.override.yml")["services"][deployment.POSTGRES_SERVICE]
    for key in ("image", "environment", "volumes", "healthcheck"):
        assert compose[key] == astro[key] == deployment.postgres_service()[key], key
    env = compose["environment"]
    login = settings.postgres_connection(0)
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == (
        login["login"], login["password"], login["schema"])
    emulators = _yaml("docker-compose.yaml")["services"][deployment.EMULATORS_SERVICE]
    assert {k: v for k, v in emulators.items() if k != "ports"} == deployment.emulators_service() | {
        "restart": "unless-stopped"}


def test_astro_settings_name_every_connection_variable_and_pool_the_dags_use():
    document = _yaml("airflow_settings.yaml")["airflow"]
    connections = {c["conn_id"]: c for c in document["connections"]}
    assert set(connections) == {config.POSTGRES_CONN_ID, config.GCP_CONN_ID, config.GEMINI_CONN_ID}
    devstack_env = settings.airflow_environment(REPO_ROOT / ".local", {key: port for key, _, port in PORTS},
                                                "postgresql://x", "http://g", "http://b", "p:1")
    local_ny_taxi = json.loads(devstack_env["AIRFLOW_CONN_" + config.POSTGRES_CONN_ID.upper()])
    astro_ny_taxi = connections[config.POSTGRES_CONN_ID]
    for field in ("login", "password", "schema"):
        assert astro_ny_taxi[f"conn_{field}"] == local_ny_taxi[field], field
    assert astro_ny_taxi["conn_host"] == deployment.POSTGRES_SERVICE
    local_google = json.loads(devstack_env["AIRFLOW_CONN_" + config.GCP_CONN_ID.upper()])
    assert connections[config.GCP_CONN_ID]["conn_extra"] == local_google["extra"]
    gemini = settings.gemini_placeholder_connection()
    assert (connections[config.GEMINI_CONN_ID]["conn_password"], connections[config.GEMINI_CONN_ID]["conn_extra"]) == (
        gemini["password"], gemini["extra"])

    pools = {p["pool_name"]: (p["pool_slot"], p["pool_description"]) for p in document["pools"]}
    assert pools == {config.TAXI_LOAD_POOL: (config.DEFAULT_TAXI_LOAD_SLOTS, config.TAXI_LOAD_POOL_DOC),
                     config.YELLOW_CAB_RAW_LOAD_POOL: (1, config.YELLOW_CAB_RAW_LOAD_POOL_DOC)}

    variables = {v["variable_name"]: v["variable_value"] for v in document["variables"]}
    every_variable = {value for name, value in vars(config).items() if name.endswith("_VAR")}
    assert set(variables) == every_variable
    assert {k: variables[k] for k in config.GCP_DEFAULTS} == config.GCP_DEFAULTS


def test_stored_variables_equal_the_defaults_the_dags_use_in_containers(monkeypatch):
    """Where tasks keep files: what airflow_settings.yaml stores is what the code defaults to with the
    containers' ZOOMCAMP_STORAGE_URL, so a stored Variable and an unset one mean the same."""
    from include.zoomcamp.walkthrough import runtimes

    monkeypatch.setenv(config.STORAGE_URL_ENV, _env_file("docker/airflow.env")[config.STORAGE_URL_ENV])
    stored = _yaml("airflow_settings.yaml")["airflow"]["variables"]
    variables = {v["variable_name"]: v["variable_value"] for v in stored}
    assert variables[config.RESULTS_DIR_VAR] == config.default_results_dir()
    assert variables[config.COPILOT_DRAFTS_DIR_VAR] == config.default_copilot_drafts_dir()
    assert variables[config.WALKTHROUGH_STORAGE_BASE_VAR] == runtimes.default_storage_base()
    assert variables[config.TAXI_DATA_BASE_URL_VAR] == config.DEFAULT_TAXI_DATA_BASE_URL
    assert variables[config.RAG_DOCUMENT_URL_VAR] == config.DEFAULT_RAG_DOCUMENT_URL


def test_the_astro_override_gives_astros_airflow_the_compose_files_endpoints():
    override = _yaml("docker-compose.override.yml")["services"]
    compose_env = _env_file("docker/airflow.env")
    for name in deployment.ASTRO_AIRFLOW_SERVICES:
        env = override[name]["environment"]
        assert env == {k: compose_env[k] for k in env}, name
        assert {"STORAGE_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST",
                config.GCP_MODE_ENV, config.STORAGE_URL_ENV} <= set(env), name
    for name in (deployment.POSTGRES_SERVICE, deployment.EMULATORS_SERVICE):
        assert override[name]["networks"] == [deployment.ASTRO_NETWORK]
        assert "ports" not in override[name], name  # 5432 is the Astro CLI's own Postgres's


def test_the_images_carry_what_the_tasks_and_the_emulators_need():
    packages = {line.strip() for line in (REPO_ROOT / "packages.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    wanted = {p for req in system_packages.for_markers(["jdk", "sandbox"]) for p in req.packages}
    assert wanted <= packages
    dockerfile = (REPO_ROOT / deployment.EMULATORS_DOCKERFILE).read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            assert all((REPO_ROOT / source).exists() for source in sources), line
    assert "pip install --no-cache-dir -r requirements-emulators.txt -c constraints.txt" in dockerfile
    assert "-r requirements-emulators.txt" in (REPO_ROOT / "requirements-local.txt").read_text()
    assert "-r requirements.txt" in (REPO_ROOT / "requirements-local.txt").read_text()
    for name in ("requirements.txt", "requirements-emulators.txt"):
        lines = [line.split("#")[0].strip() for line in (REPO_ROOT / name).read_text().splitlines()]
        assert all("==" in line for line in lines if line), name
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".env", "devstack.env", "zoomcamp.env", ".local", ".venv"} <= set(ignored)


def test_the_compose_files_follow_the_compose_specification(tmp_path):
    """The Compose Specification's JSON schema (check-jsonschema's vendored copy), offline."""
    standin = tmp_path / "astro-standin.yml"
    standin.write_text(yaml.safe_dump(ASTRO_STANDIN))
    files = [REPO_ROOT / "docker-compose.yaml", REPO_ROOT / "docker" / "compose.gcp.yaml",
             REPO_ROOT / "docker-compose.override.yml", standin]
    result = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "check-jsonschema"), "--builtin-schema",
                             "vendor.compose-spec", *map(str, files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _compose_config(*files, profiles=(), env=None) -> subprocess.CompletedProcess:
    command = ["docker-compose", "--project-directory", str(REPO_ROOT)]
    command += [arg for file in files for arg in ("-f", str(file))]
    command += [arg for profile in profiles for arg in ("--profile", profile)]
    return subprocess.run([*command, "config"], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={"PATH": os.environ["PATH"], **(env or {})})


@pytest.mark.deploy
def test_compose_parses_the_files_as_docker_compose_up_would(tmp_path):
    """Compose's own parser (interpolation, merges of the override files, references): what `up` reads first."""
    base = REPO_ROOT / "docker-compose.yaml"
    plain = _compose_config(base)
    assert plain.returncode == 0, plain.stderr
    parsed = yaml.safe_load(plain.stdout)
    # Compose 1.29's `config` lists every service; `up` starts those of the active profiles only.
    assert parsed["services"]["redis"]["profiles"] == parsed["services"]["airflow-worker"]["profiles"] == ["celery"]
    assert parsed["services"]["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert parsed["services"]["airflow-scheduler"]["environment"]["STORAGE_EMULATOR_HOST"] == "http://gcp-emulators:9023"

    celery = _compose_config(base, profiles=["celery"], env={"AIRFLOW_EXECUTOR": "CeleryExecutor",
                                                             "AIRFLOW_WORKERS": "3"})
    assert celery.returncode == 0, celery.stderr
    services = yaml.safe_load(celery.stdout)["services"]
    assert services["airflow-worker"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert str(services["airflow-worker"]["deploy"]["replicas"]) == "3"
    assert {"airflow-init", "airflow-apiserver", "redis"} <= set(services["airflow-worker"]["depends_on"])

    real = _compose_config(base, REPO_ROOT / "docker" / "compose.gcp.yaml", env=GCP_ENV)
    assert real.returncode == 0, real.stderr
    services = yaml.safe_load(real.stdout)["services"]
    assert services["gcp-emulators"]["profiles"] == ["emulators"]  # not started: no profile asks for it
    scheduler = services["airflow-scheduler"]
    assert scheduler["environment"]["AIRFLOW_VAR_GCP_PROJECT_ID"] == GCP_ENV["GCP_PROJECT_ID"]
    assert scheduler["environment"]["ZOOMCAMP_GCP"] == "real"
    assert scheduler["environment"]["STORAGE_EMULATOR_HOST"] == ""
    key_mounts = [v for v in scheduler["volumes"] if str(v).endswith("/run/gcp/key.json:ro")
                  or (isinstance(v, dict) and v.get("target") == "/run/gcp/key.json")]
    assert key_mounts, scheduler["volumes"]
    missing = _compose_config(base, REPO_ROOT / "docker" / "compose.gcp.yaml")
    assert missing.returncode != 0 and "set GCP_PROJECT_ID" in missing.stderr

    standin = tmp_path / "docker-compose.yml"
    standin.write_text(yaml.safe_dump(ASTRO_STANDIN))
    astro = _compose_config(standin, REPO_ROOT / "docker-compose.override.yml")
    assert astro.returncode == 0, astro.stderr
    services = yaml.safe_load(astro.stdout)["services"]
    assert services["scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"  # Astro's kept
    assert services["scheduler"]["environment"]["PUBSUB_EMULATOR_HOST"] == "gcp-emulators:8681"

    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        v2 = subprocess.run(["docker", "compose", "-f", str(base), "config", "-q"], capture_output=True, text=True,
                            cwd=REPO_ROOT)
        assert v2.returncode == 0, v2.stderr

