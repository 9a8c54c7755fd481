"""The dashboard's FastAPI app, mounted by the plugin under /zoomcamp-dashboard on the api-server.

Plugin apps are not protected by Airflow: every route here depends on `GetUserDep` (the api-server's
JWT from an `Authorization: Bearer` header or the `_token` cookie the UI sets; 401/403 without one)
and shows only the DAGs the auth manager lets that user read.
"""
from __future__ import annotations

from typing import Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse

from include.zoomcamp import config
from include.zoomcamp.dashboard import render
from include.zoomcamp.dashboard.summary import MAX_DAYS, summary

URL_PREFIX = "/zoomcamp-dashboard"

app = FastAPI(title="Zoomcamp dashboard", docs_url=None, redoc_url=None, openapi_url=None)

Days = Annotated[int, Query(ge=1, le=MAX_DAYS)]


def _summary(user, session, days: int, tag: str | None) -> dict:
    readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session)
    return {**summary(session, readable, days=days, tag=tag or None), "gcp": gcp_status()}


def gcp_status() -> dict:
    """Which GCP the DAGs use (`make run GCP=...`), as this api-server's environment says."""
    return {"mode": config.gcp_mode(), "project": config.gcp_value(config.GCP_PROJECT_ID_VAR)}


@app.get("/api/summary")
def api_summary(user: GetUserDep, session: SessionDep, days: Days = 7, tag: str | None = None) -> dict:
    return _summary(user, session, days, tag)


@app.get("/", response_class=HTMLResponse)
def dashboard(request: Request, user: GetUserDep, session: SessionDep, days: Days = 7,
              tag: str | None = None) -> HTMLResponse:
    base = request.scope.get("root_path", "").rstrip("/") or URL_PREFIX
    return HTMLResponse(render.page(_summary(user, session, days, tag), base_path=base))
