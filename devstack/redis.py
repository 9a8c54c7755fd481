"""Redis on loopback: the CeleryExecutor's broker for `make run EXECUTOR=celery` (Debian's `redis-server`).

Started and stopped with the other services (devstack/__main__.py); nothing is kept on disk (the queue of a
stopped stack is gone, as the LocalExecutor's is). A password is generated once and kept 0600 next to the
0600 configuration file (never on the command line, which every local user can read in `ps`): other users
of the machine reach the port but cannot queue work for Airflow's workers.
"""
from __future__ import annotations

import secrets
import shutil
import urllib.parse
from pathlib import Path

from devstack import private
from devstack.emulators import Emulator

BINARY = "redis-server"
PACKAGE = "redis-server"  # Debian's
PASSWORD_FILE = "redis.password"
CONFIG_FILE = "redis.conf"


class RedisMissing(RuntimeError):
    """redis-server is not installed; the message says how to install it."""


def binary() -> str:
    found = shutil.which(BINARY)
    if not found:
        raise RedisMissing(f"CeleryExecutor needs Redis as its broker: `{BINARY}` is not installed. Install it with "
                           f"`sudo apt-get install {PACKAGE}` (Debian/Ubuntu), or run without EXECUTOR=celery.")
    return found


class RedisServer(Emulator):
    def password(self) -> str:
        path = self.data_dir / PASSWORD_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            private.write_private(path, secrets.token_urlsafe(32) + "\n")
        return path.read_text().strip()

    @property
    def url(self) -> str:
        """The broker URL (Celery's redis transport), password included."""
        return f"redis://:{urllib.parse.quote(self.password(), safe='')}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.is_running():
            return
        command = binary()
        config = self.data_dir / CONFIG_FILE
        private.write_private(config, "\n".join([
            "bind 127.0.0.1",
            f"port {self.port}",
            "protected-mode yes",
            f"requirepass {self.password()}",
            f"dir {self.data_dir}",
            'save ""',
            "appendonly no",
            "daemonize no",
            "",
        ]))
        self._spawn([command, str(config)])


def stop_at(root: Path, port: int) -> None:
    RedisServer("redis", root / "redis", port).stop()
