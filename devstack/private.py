"""Directories and files only their owner may read: the data dir, and the files holding credentials
(devstack.env, the simple auth manager's passwords, the metadata role's password)."""
from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """`path`, created when missing; mode 0700 (an existing directory is narrowed to it)."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace `path` by a file holding `text`, mode 0600 from its creation on (never readable by others,
    not even while it is written); a reader sees the old file or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), "w") as file:
        os.fchmod(file.fileno(), FILE_MODE)  # a leftover temporary file keeps its mode through O_CREAT
        file.write(text)
    os.replace(tmp, path)


def make_private(path: Path) -> None:
    """Narrow `path` to 0600 when it exists, whoever wrote it."""
    if path.exists():
        os.chmod(path, FILE_MODE)
