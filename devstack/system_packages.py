"""The system tools the test suite drives for real, checked before any test runs.

`python -m devstack.system_packages --install` (what `make test` runs first): installs the missing
ones from Debian's/Ubuntu's packages when it can (root, or passwordless sudo, and apt-get), otherwise
stops naming the one command to run. pytest checks again for the tests it selected
(tests/conftest.py), so no test fails 20 minutes in on a missing tool.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DEBIAN_MAVEN_REPO = Path("/usr/share/maven-repo")
MAVEN_PLUGINS = ("maven-compiler-plugin", "maven-jar-plugin", "maven-resources-plugin", "maven-surefire-plugin")
CHROMIUM_ENV = "ZOOMCAMP_CHROMIUM"  # a Chromium or Chrome binary, e.g. one installed by Playwright
JDK_MAJOR = 17
# Google's own Pub/Sub emulator (a Java program), from Google Cloud CLI's apt repository, not Debian's.
GOOGLE_PUBSUB_EMULATOR = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")
GOOGLE_CLOUD_APT = "https://cloud.google.com/sdk/docs/install#deb"


def chromium_path() -> str:
    return os.environ.get(CHROMIUM_ENV) or "/usr/bin/chromium"


def _chromium_found() -> bool:
    return os.access(chromium_path(), os.X_OK)


def _jdk_found() -> bool:
    if not (shutil.which("javac") and shutil.which("java")):
        return False
    out = subprocess.run(["javac", "-version"], capture_output=True, text=True)
    match = re.search(r"javac (\d+)", out.stdout + out.stderr)
    return bool(match) and int(match.group(1)) >= JDK_MAJOR


def _maven_plugins_found() -> bool:
    plugins = DEBIAN_MAVEN_REPO / "org/apache/maven/plugins"
    return all((plugins / name).is_dir() for name in MAVEN_PLUGINS)


@dataclass(frozen=True)
class Requirement:
    what: str
    found: object  # () -> bool
    packages: tuple[str, ...]  # Debian/Ubuntu packages that provide it
    recommends: bool = True  # False: without the packages' recommended ones (docker-compose's: a Docker engine)
    source: str = ""  # where apt finds the packages, when not in Debian's/Ubuntu's own repositories


# What each test marker (tests/conftest.py) needs.
REQUIREMENTS = {
    "sandbox": (Requirement("bubblewrap (bwrap), the AI copilot's sandbox", lambda: shutil.which("bwrap") is not None,
                            ("bubblewrap",)),),
    "celery": (Requirement("Redis (redis-server), the CeleryExecutor's broker",
                           lambda: shutil.which("redis-server") is not None, ("redis-server",)),
               Requirement("bubblewrap (bwrap), each Celery worker's own view of the disk",
                           lambda: shutil.which("bwrap") is not None, ("bubblewrap",))),
    "deploy": (Requirement("Docker Compose (docker-compose), to validate the compose files without a Docker engine",
                           lambda: shutil.which("docker-compose") is not None, ("docker-compose",),
                           recommends=False),),
    "pubsub_google": (
        Requirement(f"Google's Pub/Sub emulator ({GOOGLE_PUBSUB_EMULATOR})",
                    lambda: os.access(GOOGLE_PUBSUB_EMULATOR, os.X_OK), ("google-cloud-cli-pubsub-emulator",),
                    source=f"Google Cloud CLI's apt repository ({GOOGLE_CLOUD_APT})"),
        Requirement("a Java runtime (java), which runs it", lambda: shutil.which("java") is not None,
                    ("openjdk-17-jre-headless",)),
    ),
    "browser": (Requirement(f"Chromium ({chromium_path()}, or {CHROMIUM_ENV})", _chromium_found, ("chromium",)),),
    "jdk": (
        Requirement(f"a JDK {JDK_MAJOR}+ (javac, java)", _jdk_found, ("openjdk-17-jdk-headless",)),
        Requirement("Maven (mvn)", lambda: shutil.which("mvn") is not None, ("maven",)),
        Requirement(f"Debian's Maven plugins under {DEBIAN_MAVEN_REPO} (offline builds)", _maven_plugins_found,
                    ("libmaven-compiler-plugin-java", "libmaven-jar-plugin-java", "libmaven-resources-plugin-java",
                     "libsurefire-java")),
    ),
}


def for_markers(markers) -> list[Requirement]:
    return [req for marker in sorted(markers) for req in REQUIREMENTS.get(marker, ())]


def missing(requirements) -> list[Requirement]:
    return [req for req in requirements if not req.found()]


def install_command(requirements) -> str:
    packages = " ".join(p for req in requirements for p in req.packages)
    return f"sudo apt-get update && sudo apt-get install -y {packages}"


def instructions(requirements) -> str:
    lines = [f"  - {req.what}" + (f"; its packages come from {req.source}, which apt needs configured first"
                                  if req.source else "") for req in requirements]
    return ("The full test suite needs system tools that are missing:\n" + "\n".join(lines) +
            f"\nInstall them with:\n  {install_command(requirements)}\n"
            "(or run only the tests that need none of them: make test-fast)")


def _can_install() -> list[str] | None:
    """The prefix that runs apt-get as root here, or None when it cannot."""
    if not shutil.which("apt-get"):
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo"]
    return None


def _known_to_apt(package: str) -> bool:
    return subprocess.run(["apt-cache", "show", package], capture_output=True).returncode == 0


def install(requirements) -> None:
    """Install what apt can; a requirement from a repository apt does not have configured stays missing."""
    prefix = _can_install()
    if prefix is None:
        raise RuntimeError(instructions(requirements))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "update", "-qq"], check=True, env=env)
    requirements = [req for req in requirements if not req.source or all(map(_known_to_apt, req.packages))]
    packages = [p for req in requirements for p in req.packages]
    if packages:
        print("Installing the system packages the tests need:", " ".join(packages), flush=True)
    for recommends in (True, False):
        chosen = [p for req in requirements if req.recommends == recommends for p in req.packages]
        if chosen:
            options = [] if recommends else ["--no-install-recommends"]
            subprocess.run([*prefix, "apt-get", "install", "-y", "-qq", *options, *chosen], check=True, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.system_packages", description=__doc__.split("\n")[0])
    parser.add_argument("--install", action="store_true", help="install what is missing when possible")
    parser.add_argument("markers", nargs="*", default=sorted(REQUIREMENTS), help="test tiers to check (default: all)")
    args = parser.parse_args(argv)
    needed = missing(for_markers(args.markers))
    if needed and args.install:
        try:
            install(needed)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            print(exc, file=sys.stderr)
            return 1
        needed = missing(needed)
    if needed:
        print(instructions(needed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
