"""The monitoring dashboard plugin (walkthrough 4_2) on a real api-server: its figures equal what the
REST API reports for the same window, it needs an authenticated user, and its page is self-contained."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from tests.fixtures.dag_runs import seeded_runs

MANUAL_DAGS = ("02_python", "03_getting_started_data_pipeline")  # schedule=None: only our seeded runs
# (days ago, hour, state) per DAG; the last one falls outside a 3-day window
SEED = {
    "02_python": [(0, 0, "success"), (0, 0, "failed"), (1, 6, "success"), (2, 12, "success"), (10, 1, "failed")],
    "03_getting_started_data_pipeline": [(0, 0, "failed"), (1, 3, "success"), (1, 4, "failed"), (2, 5, "success")],
}


@pytest.fixture(scope="module")
def stack(airflow_stack):
    for dag_id in MANUAL_DAGS:
        airflow_stack.wait_for_dag(dag_id)
    airflow_stack.api("GET", "/api/v2/version")  # logs in
    with seeded_runs(airflow_stack, SEED, "dashboard_seed"):
        yield airflow_stack


def get(stack, path: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"{stack.base_url}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def bearer(stack) -> dict:
    return {"Authorization": f"Bearer {stack._token}"}


def summary(stack, **params) -> dict:
    status, body = get(stack, f"/zoomcamp-dashboard/api/summary?{urllib.parse.urlencode(params)}", bearer(stack))
    assert status == 200, body
    return json.loads(body)


def rest_count(stack, window: dict, dag_id: str = "~", **params) -> int:
    query = urllib.parse.urlencode({"run_after_gte": window["start"], "run_after_lte": window["end"],
                                    "limit": 1, **params}, doseq=True)
    return stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")["total_entries"]


def test_summary_counts_equal_the_rest_api_for_the_same_window(stack):
    data = summary(stack, days=3)  # nothing else runs meanwhile: no DAG of the stack is scheduled now
    window = data["window"]
    rest = {state: rest_count(stack, window, state=state) for state in data["runs_by_state"]}
    rest_total = rest_count(stack, window)
    assert data["runs_by_state"] == rest
    assert data["total_runs"] == rest_total
    per_dag = {row["dag_id"]: row for row in data["runs_per_dag"]}
    for dag_id, runs in SEED.items():
        # Nothing but the seed runs these manual DAGs on the stack: the counts are the seed's.
        in_window = [state for days_ago, _, state in runs if days_ago < 3]
        states = per_dag[dag_id]["states"]
        assert per_dag[dag_id]["total"] == rest_count(stack, window, dag_id) == len(in_window)
        assert states == {s: in_window.count(s) for s in set(in_window)}
    assert [row["day"] for row in data["runs_per_day"]] == sorted(row["day"] for row in data["runs_per_day"])
    assert len(data["runs_per_day"]) == 3
    assert sum(sum(row["states"].values()) for row in data["runs_per_day"]) == data["total_runs"]
    finished = data["runs_by_state"].get("success", 0) + data["runs_by_state"].get("failed", 0)
    assert data["finished_runs"] == finished
    assert data["success_rate"] == pytest.approx(data["runs_by_state"].get("success", 0) / finished, abs=1e-4)


def test_runs_per_day_buckets_by_utc_day(stack):
    data = summary(stack, days=3)
    today = datetime.now(timezone.utc).date()
    by_day = {row["day"]: row["states"] for row in data["runs_per_day"]}
    two_days_ago = by_day[(today - timedelta(days=2)).isoformat()]
    seeded = [state for runs in SEED.values() for days_ago, _, state in runs if days_ago == 2]
    assert two_days_ago.get("success", 0) == seeded.count("success") == 2  # 02_python and 03_... one each
    month = summary(stack, days=30)["runs_by_state"]
    assert month["failed"] >= 4  # the seed's, with the run 10 days ago; other modules' failed runs add to it


def test_tag_filter_and_next_runs(stack):
    data = summary(stack, days=3)
    assert "zoomcamp" in data["tags"]
    for tag in data["tags"]:
        tagged = {d["dag_id"] for d in stack.api("GET", f"/api/v2/dags?tags={tag}&limit=100")["dags"]}
        assert {row["dag_id"] for row in summary(stack, days=3, tag=tag)["runs_per_dag"]} <= tagged
    unpaused = {d["dag_id"] for d in stack.api("GET", "/api/v2/dags?paused=false&limit=100")["dags"]}
    assert {row["dag_id"] for row in data["next_runs"]} <= unpaused
    for row in data["next_runs"]:
        assert row["next_run_after"]


def test_anonymous_and_bad_tokens_get_no_data(stack):
    for path in ("/zoomcamp-dashboard/api/summary", "/zoomcamp-dashboard/"):
        status, body = get(stack, path)
        assert status in (401, 403), (path, status)
        assert "runs_by_state" not in body and "<svg" not in body
        status, _ = get(stack, path, {"Authorization": "Bearer not-a-jwt"})
        assert status in (401, 403)


def test_the_ui_cookie_is_accepted(stack):
    status, body = get(stack, "/zoomcamp-dashboard/api/summary?days=3", {"Cookie": f"_token={stack._token}"})
    assert status == 200 and "runs_by_state" in json.loads(body)


def test_page_renders_the_panels_as_inline_svg_without_external_urls(stack):
    status, html = get(stack, "/zoomcamp-dashboard/?days=3", bearer(stack))
    assert status == 200
    for panel in ("runs-per-day", "runs-by-state", "runs-per-dag"):
        assert f'<svg class="panel-svg" id="{panel}"' in html
    assert 'id="next-runs"' in html
    assert "02_python" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html.lower()


def test_page_and_summary_show_which_gcp_the_dags_use(stack):
    assert summary(stack, days=3)["gcp"] == {"mode": "emulators", "project": "zoomcamp-local"}
    status, html = get(stack, "/zoomcamp-dashboard/?days=3", bearer(stack))
    assert status == 200 and '<p id="gcp-mode">GCP: <b>emulators</b> (local, offline)</p>' in html


def test_plugin_is_registered_with_a_nav_entry(stack):
    plugins = stack.api("GET", "/api/v2/plugins")["plugins"]
    ours = next(p for p in plugins if p["name"] == "zoomcamp_dashboard")
    assert ours["fastapi_apps"][0]["url_prefix"] == "/zoomcamp-dashboard"
    assert ours["external_views"][0]["destination"] == "nav"
    assert ours["external_views"][0]["href"] == "/zoomcamp-dashboard/"
