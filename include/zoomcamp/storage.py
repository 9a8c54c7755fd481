"""Files the tasks keep for a later task or for the user, through Airflow's object storage.

A location is a Variable's value: a URL (`file:///path`, `gs://bucket/prefix`) or a plain local path. A task
never hands another task a path of its own machine's disk (another worker cannot see it): it writes under
such a base and hands over the ObjectStoragePath, or the URL (`shown`). Where tasks run on several
machines the base is a bucket (config.storage_url).
"""
from __future__ import annotations

import logging
import re

from include.zoomcamp import config
from include.zoomcamp.errors import PermanentError

log = logging.getLogger(__name__)


class StorageLocationError(PermanentError):
    """A Variable naming where files go is empty or neither a URL nor an absolute path."""


def path(base: str, *parts: str, variable: str):
    """<base>/<part>/... as an ObjectStoragePath; gs:// paths read through config.GCP_CONN_ID. A run id or
    another part with characters outside [A-Za-z0-9_.-] is made safe for every store."""
    from airflow.sdk import ObjectStoragePath

    base = (base or "").strip().rstrip("/")
    if not base:
        raise StorageLocationError(f"Variable {variable} is empty: set a file:///path or gs://bucket/prefix")
    if "://" not in base:
        if not base.startswith("/"):
            raise StorageLocationError(f"Variable {variable} = {base!r} is neither a URL (file:///path, "
                                       "gs://bucket/prefix) nor an absolute path")
        base = f"file://{base}"
    conn_id = None if base.startswith("file://") else config.GCP_CONN_ID
    safe = [re.sub(r"[^A-Za-z0-9_.-]", "_", part) for part in parts]
    return ObjectStoragePath("/".join([base, *safe]), conn_id=conn_id)


def is_local(location) -> bool:
    return location.protocol in ("file", "local")


def shown(location) -> str:
    """How a task reports where it wrote: the local path on this machine's disk, else the URL (without the
    connection id that str() of an ObjectStoragePath puts before the bucket)."""
    return location.path if is_local(location) else f"{location.protocol}://{location.path}"


def write_text(location, text: str):
    """Write `text` to `location` (an ObjectStoragePath) whole: a local file appears complete or not at all
    (written beside it, then renamed); an object store's upload is one request. Returns the location."""
    if is_local(location):
        import os
        import tempfile
        from pathlib import Path

        target = Path(location.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    else:  # object stores have no folders: gcsfs's mkdir would try to create the bucket
        with location.open("w") as out:
            out.write(text)
    log.info("Wrote %d bytes to %s", len(text.encode()), location)
    return location
