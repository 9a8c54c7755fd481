"""Walkthrough 1_3: prove the GCP connection works by writing a small object and reading it back.

Failures a retry cannot fix — the bucket does not exist, the connection is not defined, its
credentials are unusable or lack permission — raise GcsConnectionError, which fails the task at once,
with a message naming the bucket and the connection id. Anything else (a network hiccup, a 5xx) is retried.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

from include.zoomcamp.errors import PermanentError

log = logging.getLogger(__name__)

TEST_OBJECT = "test/hello.txt"
GREETING = "Hello from Airflow! GCP connection works!"


class GcsConnectionError(PermanentError):
    """The bucket cannot be reached through the connection as it is set up, or does not hold the greeting."""


def _hook(bucket: str, conn_id: str):
    """A GCSHook whose credentials are resolved: an undefined connection or one whose credentials
    cannot be built (missing key file, invalid key JSON, ...) fails here, at once."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException
    from google.auth.exceptions import GoogleAuthError, TransportError

    where = f"bucket {bucket!r} through connection {conn_id!r}"
    try:
        hook = GCSHook(gcp_conn_id=conn_id)
        hook.get_conn()
    except AirflowNotFoundException:
        raise GcsConnectionError(
            f"Cannot reach {where}: connection {conn_id!r} is not defined (Admin > Connections, "
            f"or AIRFLOW_CONN_{conn_id.upper()})") from None
    except TransportError:
        raise  # the metadata server or token endpoint unreachable for a moment: retry
    except (AirflowException, GoogleAuthError, ValueError, OSError) as exc:
        raise GcsConnectionError(
            f"Cannot reach {where}: the connection's credentials cannot be loaded: "
            f"{type(exc).__name__}: {exc}") from None
    return hook


@contextmanager
def _explained(action: str, bucket: str, conn_id: str):
    """Turn the storage errors a retry cannot fix into GcsConnectionError naming bucket and connection."""
    from google.api_core import exceptions as api
    from google.auth.exceptions import RefreshError

    where = f"gs://{bucket}/{TEST_OBJECT} through connection {conn_id!r}"
    try:
        yield
    except RefreshError as exc:
        raise GcsConnectionError(
            f"Cannot {action} {where}: the connection's credentials were refused: {exc}") from None
    except (api.Unauthorized, api.Forbidden) as exc:
        raise GcsConnectionError(
            f"Cannot {action} {where}: access denied to bucket {bucket!r} for connection {conn_id!r} "
            f"(the service account needs a Storage role on it): {exc.message}") from None
    except api.NotFound as exc:
        raise GcsConnectionError(
            f"Cannot {action} {where}: bucket {bucket!r} does not exist or is not visible to connection "
            f"{conn_id!r} (create it with 07_gcp_setup, or set Variable GCP_BUCKET_NAME): {exc.message}") from None


def write_greeting(bucket: str, conn_id: str) -> str:
    """Write the greeting to `test/hello.txt`; returns the object's URI."""
    hook = _hook(bucket, conn_id)
    with _explained("write", bucket, conn_id):
        hook.upload(bucket_name=bucket, object_name=TEST_OBJECT, data=GREETING, mime_type="text/plain")
    uri = f"gs://{bucket}/{TEST_OBJECT}"
    log.info("Wrote %s through connection %r", uri, conn_id)
    return uri


def read_greeting(bucket: str, conn_id: str) -> str:
    """Read `test/hello.txt` back and check it holds the greeting; returns the text."""
    hook = _hook(bucket, conn_id)
    with _explained("read", bucket, conn_id):
        text = hook.download(bucket_name=bucket, object_name=TEST_OBJECT).decode()
    if text != GREETING:
        raise GcsConnectionError(f"gs://{bucket}/{TEST_OBJECT} holds {text!r}, expected {GREETING!r}")
    log.info("gs://%s/%s reads back: %s", bucket, TEST_OBJECT, text)
    return text
