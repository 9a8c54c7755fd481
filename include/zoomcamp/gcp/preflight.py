"""The check every GCP task runs before it touches GCP (`pre_execute` of GCP_DEFAULT_ARGS).

Real mode (`make run GCP=real`): the credentials of the task's connection are found (as the google
provider will: include/zoomcamp/gcp/credentials.py) and exchanged for a token once, with a short
timeout and no retry; missing, unreadable or refused credentials fail the task at once
(PreflightFailed, a PermanentError of the project's error policy) naming the connection, the three ways
to give credentials and the project — instead of google.auth probing a metadata server and the clients
retrying the token for minutes.
The project must be set (not the emulators' placeholder).

Every mode: DAGs whose values were fixed at parse time (event-file-ingest's watcher and asset) check
that the Variables the other DAGs read still say the same, and fail naming both when not.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from include.zoomcamp import config
from include.zoomcamp.errors import PermanentError
from include.zoomcamp.gcp import credentials

log = logging.getLogger(__name__)

TOKEN_TIMEOUT_SECONDS = 10


class PreflightFailed(PermanentError):
    """The task cannot reach GCP as configured; the checks raise it with or without a task around them."""


def check_watched(watched: Mapping[str, str], current: Mapping[str, str | None]) -> None:
    """`watched`: values fixed at parse time; `current`: the Variables now (None: not set)."""
    differing = {key: value for key, value in current.items()
                 if value is not None and key in watched and value != watched[key]}
    if not differing:
        return
    pairs = "; ".join(f"Variable {key} is {value!r} but this DAG was parsed with {watched[key]!r}"
                      for key, value in differing.items())
    raise PreflightFailed(
        f"{pairs}. This DAG's asset, watcher and targets were fixed when Airflow parsed it, from AIRFLOW_VAR_<KEY> "
        "in Airflow's environment (in real mode from zoomcamp.env) or else the emulators' defaults, while the "
        "other DAGs read the Variables at run time. Make them one (docs/gcp.md#one-place-for-project-bucket-"
        "and-dataset): in real mode put the value in zoomcamp.env and restart `make run`; on the emulators "
        "delete the Variable (`airflow variables delete <KEY>`) or run 06_gcp_kv with the parsed value.")


class _BoundedRequest:
    """google.auth's requests transport with a short timeout: a token endpoint that does not answer
    fails the check in seconds, not after the transport's default 120 s."""

    def __init__(self):
        from google.auth.transport.requests import Request

        self._request = Request()

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        return self._request(url, method=method, body=body, headers=headers, timeout=TOKEN_TIMEOUT_SECONDS, **kwargs)


def check_credentials(conn_id: str, extra: Mapping | None, project: str,
                      environ: Mapping[str, str] | None = None) -> credentials.CredentialSource:
    """Find the connection's credentials and get a token with them; PreflightFailed when unusable."""
    from google.auth import exceptions as auth

    environ = os.environ if environ is None else environ
    found = credentials.discover(extra, environ, conn_id=conn_id)
    if not found.usable:
        raise PreflightFailed(credentials.unusable_message(found, project, conn_id))
    if project in ("", config.GCP_DEFAULTS[config.GCP_PROJECT_ID_VAR]):
        raise PreflightFailed(f"Real GCP mode, but the project is {project or 'not set'!r}, the emulators' "
                              "placeholder: set GCP_PROJECT_ID in zoomcamp.env and restart `make run` "
                              "(docs/gcp.md).")
    where = f"connection {conn_id!r} ({found.describe()}), project {project}"
    try:
        from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

        creds = GoogleBaseHook(gcp_conn_id=conn_id).get_credentials()
    except Exception as exc:  # any failure to build them: a malformed key, a file the worker cannot read, ...
        raise PreflightFailed(f"The GCP credentials of {where} cannot be loaded: {type(exc).__name__}: {exc}. "
                              f"{credentials.three_ways(conn_id)}") from None
    try:
        creds.refresh(_BoundedRequest())
    except auth.RefreshError as exc:
        raise PreflightFailed(f"Google refused the GCP credentials of {where}: {exc}. A deleted or disabled key, "
                              f"revoked user credentials or a wrong clock cause this. "
                              f"{credentials.three_ways(conn_id)}") from None
    except auth.TransportError as exc:
        token_uri = getattr(creds, "_token_uri", None) or "Google's token endpoint"
        raise PreflightFailed(f"Could not reach {token_uri} to get a token for {where}: {exc}. Offline, or behind "
                              "a proxy that needs HTTPS_PROXY in the environment of `make run`?") from None
    return found


class GcpPreflight:
    """`pre_execute` of GCP tasks. `watched`: the course values the DAG fixed at parse time."""

    def __init__(self, watched: Mapping[str, str] | None = None) -> None:
        self.watched = dict(watched or {})

    def __call__(self, context) -> None:
        from airflow.sdk import BaseHook, Variable
        from airflow.sdk.exceptions import AirflowNotFoundException

        task = context["task"]
        if self.watched:
            check_watched(self.watched, {key: Variable.get(key, default=None) for key in self.watched})
        if config.gcp_mode() != config.GCP_REAL:
            return
        conn_id = getattr(task, "gcp_conn_id", None) or config.GCP_CONN_ID
        project = self.watched.get(config.GCP_PROJECT_ID_VAR) or Variable.get(
            config.GCP_PROJECT_ID_VAR, default=config.gcp_value(config.GCP_PROJECT_ID_VAR))
        try:
            extra = BaseHook.get_connection(conn_id).extra_dejson
        except AirflowNotFoundException:
            extra = None
        found = check_credentials(conn_id, extra, project)
        log.info("Real GCP: project %s, connection %r: %s", project, conn_id, found.describe())
