"""Airflow 3 plugin: the walkthrough 4_2 monitoring dashboard (runs per day, state donut, success
rate, runs per DAG, next scheduled runs), served by the api-server under /zoomcamp-dashboard and
linked from the UI's navigation. The code lives in include/zoomcamp/dashboard/."""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class ZoomcampDashboardPlugin(AirflowPlugin):
    name = "zoomcamp_dashboard"

    @property
    def fastapi_apps(self):  # imported lazily: only the api-server serves it
        from include.zoomcamp.dashboard.app import URL_PREFIX, app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "Zoomcamp dashboard"}]

    external_views = [
        {
            "name": "Zoomcamp dashboard",
            "href": "/zoomcamp-dashboard/",
            "destination": "nav",
            "category": "browse",
            "url_route": "zoomcamp-dashboard",
        }
    ]
