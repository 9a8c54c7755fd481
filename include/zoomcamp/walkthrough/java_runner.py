"""Walkthrough 2_1: where Java runs — the one place that chooses it for every Java DAG.

Setting ZOOMCAMP_JAVA_RUNNER (read when the DAGs are parsed; the workers share the environment):
- `docker`: DockerOperator starts the program's image (`eclipse-temurin:17-jdk`, a Maven image) on
  the engine at DOCKER_HOST (else /var/run/docker.sock) — compose or a laptop with Docker.
- `local`: BashOperator runs the same script with the worker's own JDK (`javac`, `java`) and Maven.
- `auto` (default): `docker` when DOCKER_HOST is set or the Docker socket exists, else `local`.

Both runners run one shell script in a scratch directory holding a copy of the project files
(include/walkthrough_files/, Kestra's namespace files): the local runner copies them, the Docker
runner unpacks them from an archive passed in the container's environment, so no bind mount is
needed (the engine may run on another host than the worker, as with Docker-out-of-Docker). The
last line the program prints is the task's XCom.

A missing JDK, Maven or Docker engine fails the task at once (no retry would install it), with a
message saying what to install or set.

Maven: with `ZOOMCAMP_MAVEN_MIRROR` (a repository URL) every artifact comes from that repository;
the local runner defaults it to Debian's `file:///usr/share/maven-repo` when that has the build
plugins (packages libmaven-{compiler,jar,resources}-plugin-java, libsurefire-java), so the Maven
project builds offline. The pom pins the plugin versions Debian ships, which Maven Central has too.
"""
from __future__ import annotations

import base64
import functools
import io
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from include.zoomcamp import config
from include.zoomcamp.errors import PermanentError
from include.zoomcamp.walkthrough.runtimes import PROJECT_FILES

DOCKER, LOCAL, AUTO = "docker", "local", "auto"
JDK_IMAGE = "eclipse-temurin:17-jdk"
MAVEN_IMAGE = "maven:3.9-eclipse-temurin-17"
DOCKER_SOCKET = Path("/var/run/docker.sock")
MAVEN_MIRROR_ENV = "ZOOMCAMP_MAVEN_MIRROR"
DEBIAN_MAVEN_REPO = Path("/usr/share/maven-repo")
ARCHIVE_ENV = "ZOOMCAMP_PROJECT_ARCHIVE"

INSTALL_HINTS = {
    "javac": "a JDK 17 (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless; macOS: brew install openjdk@17)",
    "java": "a JDK 17 (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless; macOS: brew install openjdk@17)",
    "mvn": "Maven 3.8+ (Debian/Ubuntu: apt-get install maven, plus libmaven-compiler-plugin-java "
           "libmaven-jar-plugin-java libmaven-resources-plugin-java libsurefire-java to build offline; "
           "macOS: brew install maven)",
}

# Runs first in both runners, in a scratch directory removed afterwards; the project files are in it.
# `mvn` reads every artifact from $ZOOMCAMP_MAVEN_MIRROR when that is set.
_PRELUDE = """set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{fetch}
cd "$work"
mvn() {{
  if [ -n "${{ZOOMCAMP_MAVEN_MIRROR:-}}" ]; then
    cat > "$work/.maven-settings.xml" <<SETTINGS
<settings><localRepository>$work/.m2</localRepository><mirrors><mirror>
  <id>mirror</id><mirrorOf>*</mirrorOf><url>$ZOOMCAMP_MAVEN_MIRROR</url>
</mirror></mirrors></settings>
SETTINGS
    command mvn --batch-mode -Dstyle.color=never -s "$work/.maven-settings.xml" "$@"
  else
    command mvn --batch-mode -Dstyle.color=never "$@"
  fi
}}
"""
_LOCAL_FETCH = 'cp -R "$ZOOMCAMP_PROJECT_DIR/." "$work"'
_DOCKER_FETCH = f'printf %s "${ARCHIVE_ENV}" | base64 -d | tar -xz -C "$work"'


@dataclass(frozen=True)
class JavaProgram:
    """A shell script run in a copy of the project files, the image it needs and the local tools it calls."""

    script: str
    image: str = JDK_IMAGE
    tools: tuple[str, ...] = ("javac", "java")


def runner() -> str:
    chosen = os.environ.get(config.JAVA_RUNNER_ENV, AUTO).strip().lower() or AUTO
    if chosen not in (DOCKER, LOCAL, AUTO):
        raise ValueError(f"{config.JAVA_RUNNER_ENV}={chosen!r}: expected docker, local or auto")
    if chosen == AUTO:
        return DOCKER if os.environ.get("DOCKER_HOST") or DOCKER_SOCKET.exists() else LOCAL
    return chosen


def maven_mirror() -> str:
    """The local runner's Maven repository: ZOOMCAMP_MAVEN_MIRROR, else Debian's when it has the build plugins."""
    if MAVEN_MIRROR_ENV in os.environ:
        return os.environ[MAVEN_MIRROR_ENV]
    has_plugins = (DEBIAN_MAVEN_REPO / "org/apache/maven/plugins/maven-compiler-plugin").is_dir()
    return DEBIAN_MAVEN_REPO.as_uri() if has_plugins else ""


def script(program: JavaProgram, where: str) -> str:
    fetch = _DOCKER_FETCH if where == DOCKER else _LOCAL_FETCH
    return _PRELUDE.format(fetch=fetch) + program.script.strip() + "\n"


@functools.cache
def project_archive() -> str:
    """include/walkthrough_files as a base64 .tar.gz (a few KB): what the container unpacks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(PROJECT_FILES.rglob("*")):
            if path.is_file() and not {"__pycache__", "target"} & set(path.relative_to(PROJECT_FILES).parts):
                tar.add(path, arcname=str(path.relative_to(PROJECT_FILES)))
    return base64.b64encode(buffer.getvalue()).decode()


class RunnerMissing(PermanentError):
    """What the chosen Java runner needs is not there (a JDK or Maven on PATH, a Docker engine): no retry
    installs or starts it."""


class ToolCheck:
    """pre_execute hook of the local runner: fail at once, naming what to install, when a tool is missing."""

    def __init__(self, tools: tuple[str, ...]):
        self.tools = tools

    def __call__(self, context=None) -> None:
        missing = [tool for tool in self.tools if shutil.which(tool) is None]
        if missing:
            needs = sorted({INSTALL_HINTS[tool] for tool in missing})
            raise RunnerMissing(
                f"{', '.join(missing)} not found on PATH: install {' and '.join(needs)}; "
                f"or run Java in containers with a Docker engine ({config.JAVA_RUNNER_ENV}=docker)")


class DockerCheck:
    """pre_execute hook of the Docker runner: fail at once when no Docker engine answers."""

    def __init__(self, docker_url: str):
        self.docker_url = docker_url

    def __call__(self, context=None) -> None:
        import docker

        try:
            docker.DockerClient(base_url=self.docker_url, timeout=10).ping()
        except Exception as exc:  # docker raises DockerException, requests' errors or OSError
            raise RunnerMissing(
                f"No Docker engine answers at {self.docker_url} ({type(exc).__name__}: {exc}): start Docker "
                f"(or set DOCKER_HOST), or install a JDK 17 and Maven and set {config.JAVA_RUNNER_ENV}=local") from None


def java_task(task_id: str, program: JavaProgram):
    """The task that runs `program` with this environment's runner (see the module docstring)."""
    if runner() == DOCKER:
        from airflow.providers.docker.operators.docker import DockerOperator

        docker_url = os.environ.get("DOCKER_HOST") or f"unix://{DOCKER_SOCKET}"
        return DockerOperator(
            task_id=task_id,
            image=program.image,
            command=["bash", "-c", script(program, DOCKER)],
            environment={ARCHIVE_ENV: project_archive(), MAVEN_MIRROR_ENV: os.environ.get(MAVEN_MIRROR_ENV, "")},
            docker_url=docker_url,
            mount_tmp_dir=False,
            auto_remove="success",
            pre_execute=DockerCheck(docker_url),
        )
    from airflow.providers.standard.operators.bash import BashOperator

    return BashOperator(
        task_id=task_id,
        bash_command=script(program, LOCAL),
        env={"ZOOMCAMP_PROJECT_DIR": str(PROJECT_FILES), MAVEN_MIRROR_ENV: maven_mirror()},
        append_env=True,
        pre_execute=ToolCheck(program.tools),
    )
