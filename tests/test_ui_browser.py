"""The web UI in a real browser: Debian's chromium driven by Playwright on a real Airflow (api-server,
scheduler, dag-processor, triggerer). Log in through the login page, the DAG list with its tags, the
04_postgres_taxi trigger form (a load that fills the table, and month 13 refused before any run),
and the monitoring dashboard opened from the navigation, its figures against the REST API.

A screenshot of each step goes to $ZOOMCAMP_TEST_ARTIFACTS/browser (default .local/test-artifacts/browser/);
the path is printed at the end of the run. Run only these tests:
`.venv/bin/python -m pytest tests/test_ui_browser.py`.
"""
from __future__ import annotations

import json
import re
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

import pytest

from devstack import system_packages
from include.zoomcamp import config
from include.zoomcamp.taxi.schemas import GREEN
from tests.conftest import artifacts_dir
from tests.fixtures.dag_runs import seeded_runs
from tests.fixtures.taxi import write_taxi_gz

CHROMIUM = system_packages.chromium_path()  # Debian's (make test installs it) or ZOOMCAMP_CHROMIUM; no download
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 120_000  # the machine is shared and slow: a page or a click may take long
RUN_TIMEOUT_MS = 600_000
TAXI_DAG = "04_postgres_taxi"
ROWS = 500
CONF = {"taxi": "green", "year": "2019", "month": "01"}
# Finished runs the dashboard counts, (days ago, hour, state) per DAG; schedule=None DAGs only. Hours
# from 18 on: test_dashboard seeds earlier ones, and (dag_id, logical_date) is unique.
SEED = {
    "02_python": [(0, 18, "success"), (1, 19, "success"), (2, 20, "failed"), (4, 21, "success")],
    "03_getting_started_data_pipeline": [(0, 19, "failed"), (1, 20, "success"), (3, 21, "success")],
    "yellow_cab_sequential_ingest": [(2, 18, "success"), (5, 18, "success"), (6, 18, "failed")],
    TAXI_DAG: [(1, 18, "success")],
}


@pytest.fixture(scope="module")
def artifacts(request) -> Path:
    path = artifacts_dir("browser")
    yield path
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print(f"\nbrowser test screenshots: {path}")


@pytest.fixture(scope="module")
def served_month(release_site) -> int:
    """The green 2019-01 file on the loopback release site; returns its row count."""
    write_taxi_gz(release_site[0], "green", 2019, 1, ROWS)
    return ROWS


@pytest.fixture(scope="module")
def stack(airflow_stack, dagbag, release_site):
    """The session's stack reading taxi files from this module's release site, with the seeded runs."""
    for dag_id in dagbag.dag_ids:
        airflow_stack.wait_for_dag(dag_id)
    with airflow_stack.variables({config.TAXI_DATA_BASE_URL_VAR: release_site[1]}), \
            seeded_runs(airflow_stack, SEED, "browser_seed"):
        yield airflow_stack


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def ui(browser, stack, artifacts):
    """One browser tab, signed in as admin through the UI's login page (simple auth manager)."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=stack.base_url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = context.new_page()
    page.goto("/")
    page.wait_for_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(stack.admin_password())
    shot(page, artifacts, "01-login")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    yield page
    context.close()


def shot(page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"))


def dag_cards(page) -> dict[str, list[str]]:
    """The DAG list's cards: DAG id -> the tags shown on its card."""
    return page.eval_on_selector_all(
        "[data-testid=dag-card]",
        """cards => Object.fromEntries(cards.map(card => [
               card.querySelector('[data-testid=dag-id]').textContent.trim(),
               [...card.querySelectorAll('[data-testid=limited-items-list] a')].map(a => a.textContent.trim())]))""")


def api_dags(stack, **params) -> dict[str, list[str]]:
    query = urllib.parse.urlencode({"limit": 1000, **params})
    dags = stack.api("GET", f"/api/v2/dags?{query}")["dags"]
    return {d["dag_id"]: sorted(t["name"] for t in d["tags"]) for d in dags}


def test_login_lands_on_the_ui_and_the_dag_list_shows_every_dag_with_its_tags(ui, stack, dagbag, artifacts):
    from playwright.sync_api import expect

    page = ui
    expect(page.get_by_test_id("nav-dags-link")).to_be_visible()  # the signed-in UI, not the login page
    expected = {dag_id: sorted(dag.tags) for dag_id, dag in dagbag.dags.items()}  # from the DAG files
    assert api_dags(stack) == expected

    page.goto("/dags")
    expect(page.get_by_text(f"{len(expected)} Dags", exact=True)).to_be_visible()
    expect(page.get_by_test_id("dag-card")).to_have_count(len(expected))  # one page: the list pages at 50
    shot(page, artifacts, "02-dag-list")
    assert {dag_id: sorted(tags) for dag_id, tags in dag_cards(page).items()} == expected

    # A tag on a card filters the list to the DAGs carrying it, as the REST API does.
    for tag in (config.WALKTHROUGH_TAG, config.TAG):
        page.goto("/dags")
        card = page.get_by_test_id("dag-card").filter(has=page.get_by_role("link", name=tag, exact=True)).first
        card.get_by_role("link", name=tag, exact=True).click()
        page.wait_for_url(re.compile(rf"tags={tag}"))
        tagged = api_dags(stack, tags=tag)
        expect(page.get_by_test_id("dag-card")).to_have_count(len(tagged))
        assert set(dag_cards(page)) == set(tagged)
        shot(page, artifacts, f"03-dag-list-tag-{tag}")


def open_trigger_form(page):
    page.goto(f"/dags/{TAXI_DAG}")
    page.get_by_test_id("trigger-dag-button").first.click()
    heading = page.get_by_role("heading", name=re.compile(f"Trigger Dag.*{TAXI_DAG}"))
    return page.get_by_role("dialog").filter(has=heading)


def choose(page, dialog, label: str, value: str) -> None:
    """Pick `value` in one of the form's dropdowns (a Param with an enum)."""
    dialog.get_by_label(label).click()
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def test_trigger_form_loads_green_2019_01_and_the_run_succeeds(ui, stack, pg, served_month, artifacts):
    from playwright.sync_api import expect

    page = ui
    if pg.execute("SELECT to_regclass('public.green_tripdata')").fetchone()[0]:  # other modules load it too
        pg.execute("DELETE FROM public.green_tripdata WHERE filename = %s", (GREEN.file_name("2019", "01"),))
    before = {r["dag_run_id"] for r in stack.runs(TAXI_DAG)}

    dialog = open_trigger_form(page)
    choose(page, dialog, "Taxi", "green")
    dialog.locator("input[name=element_year]").fill("2019")  # a free text field with a datalist
    choose(page, dialog, "Month", "01")
    expect(dialog.locator("input[name=element_taxi]")).to_have_value("green")
    expect(dialog.locator("input[name=element_month]")).to_have_value("01")
    shot(page, artifacts, "04-trigger-form-green-2019-01")
    dialog.get_by_test_id("trigger-dag-submit").click()

    page.wait_for_url(re.compile(rf"/dags/{TAXI_DAG}/runs/.+"))  # the UI opens the new run
    run_id = urllib.parse.unquote(page.url.rsplit("/runs/", 1)[1])
    assert run_id not in before
    assert stack.api("GET", stack.run_path(TAXI_DAG, run_id))["conf"] == CONF
    badge = page.get_by_test_id("header-card").get_by_test_id("state-badge")
    expect(badge).to_have_text(re.compile("Success|Failed"), timeout=RUN_TIMEOUT_MS)  # the page follows the run
    shot(page, artifacts, "05-run-finished")
    assert badge.inner_text().strip() == "Success", stack.task_log(TAXI_DAG, run_id, "extract_and_load")

    assert stack.api("GET", stack.run_path(TAXI_DAG, run_id))["state"] == "success"
    report = stack.xcom(TAXI_DAG, run_id, "extract_and_load")
    assert report["rows_in_file"] == report["rows_inserted"] == served_month
    count = pg.execute(f"SELECT count(*) FROM public.{GREEN.table} WHERE filename = %s",
                       (GREEN.file_name("2019", "01"),)).fetchone()[0]
    assert count == served_month


def test_trigger_form_refuses_month_13_before_a_run_exists(ui, stack, artifacts):
    from playwright.sync_api import expect

    page = ui
    before = {r["dag_run_id"] for r in stack.runs(TAXI_DAG)}
    dialog = open_trigger_form(page)

    # The month dropdown offers 01 to 12 only (the Param's enum): 13 cannot be picked.
    dialog.get_by_label("Month").click()
    page.keyboard.type("13")
    expect(page.get_by_text("No options")).to_be_visible()
    shot(page, artifacts, "06-month-13-no-option")
    page.keyboard.press("Enter")
    dialog.get_by_role("heading").click()  # closes the dropdown, not the form
    expect(dialog.locator("input[name=element_month]")).not_to_have_value("13")

    # Typed into the form's configuration JSON, 13 is refused by the Params' JSON schema on submit.
    dialog.get_by_text("Advanced Options").click()
    editor = dialog.locator(".monaco-editor").first
    expect(editor).to_be_visible()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(json.dumps({**CONF, "month": "13"}))
    dialog.get_by_test_id("trigger-dag-submit").click()
    expect(dialog.get_by_text(re.compile(r"Invalid input for param month: '13' is not one of"))).to_be_visible()
    shot(page, artifacts, "07-month-13-refused")

    assert {r["dag_run_id"] for r in stack.runs(TAXI_DAG)} == before
    expect(dialog).to_be_visible()  # still the form: nothing was started
    dialog.get_by_role("button", name="Close").click()


def dashboard_figures(frame) -> dict:
    """What the dashboard page shows: its window's first day, total, runs by state, runs per DAG and state."""
    header = frame.locator("form small").inner_text()
    first_day, total = re.search(r"(\d{4}-\d{2}-\d{2}) – .* (\d+) runs", header).groups()

    def titles(panel: str, pattern: str) -> list[tuple]:
        return [re.fullmatch(pattern, t).groups() for t in frame.locator(f"#{panel} title").all_text_contents()]
    by_state = {state: int(n) for state, n in titles("runs-by-state", r"(\w+): (\d+)")}
    per_dag = {(dag_id, state): int(n) for dag_id, state, n in titles("runs-per-dag", r"(\S+) (\w+): (\d+)")}
    rate = re.search(r"success rate: (\d+) successful\s+of (\d+) finished", frame.locator("body").inner_text())
    return {"first_day": first_day, "total": int(total), "by_state": by_state, "per_dag": per_dag,
            "successful": int(rate[1]), "finished": int(rate[2])}


def rest_figures(stack, first_day: str, until: datetime, dag_ids) -> dict:
    window = {"run_after_gte": f"{first_day}T00:00:00+00:00", "run_after_lte": until.isoformat()}

    def count(dag_id="~", **params):
        query = urllib.parse.urlencode({**window, "limit": 1, **params})
        return stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")["total_entries"]
    states = ("success", "failed", "running", "queued")
    by_state = {s: n for s in states if (n := count(state=s))}
    per_dag = {(d, s): n for d in dag_ids if count(d) for s in states if (n := count(d, state=s))}
    return {"total": count(), "by_state": by_state, "per_dag": per_dag,
            "successful": by_state.get("success", 0),
            "finished": by_state.get("success", 0) + by_state.get("failed", 0)}


def test_dashboard_from_the_navigation_shows_what_the_rest_api_counts(ui, stack, artifacts):
    from playwright.sync_api import expect

    page = ui
    page.goto("/dags")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Zoomcamp dashboard").click()
    # The plugin's nav entry (external_views, destination "nav") opens its page in an iframe.
    frame = page.frame_locator("iframe").first
    expect(frame.get_by_role("heading", name="Zoomcamp runs dashboard")).to_be_visible()
    shot(page, artifacts, "08-dashboard")  # docs/img/dashboard.png, the README's image

    # Runs count whatever their DAG: also those of a DAG whose file is gone (stale; another module's
    # Git bundle, say), which GET /dags leaves out unless asked.
    dag_ids = api_dags(stack, exclude_stale="false")
    shown = dashboard_figures(frame)  # nothing runs meanwhile: no DAG of the stack is scheduled now
    rest = rest_figures(stack, shown["first_day"], datetime.now(timezone.utc), dag_ids)
    assert {k: shown[k] for k in rest} == rest
    for dag_id, runs in SEED.items():  # the seeded runs are among them (7-day window: all of them)
        for state in {s for *_, s in runs}:
            assert shown["per_dag"][(dag_id, state)] >= sum(s == state for *_, s in runs)

    # The page's own tag filter limits every panel to the DAGs carrying the tag.
    frame.get_by_label("Tag").select_option(config.WALKTHROUGH_TAG)
    frame.get_by_role("button", name="Show").click()
    json_link = frame.get_by_role("link", name="JSON")
    expect(json_link).to_have_attribute("href", re.compile(f"tag={config.WALKTHROUGH_TAG}"))
    tagged = api_dags(stack, tags=config.WALKTHROUGH_TAG, exclude_stale="false")
    shown = dashboard_figures(frame)
    rest = rest_figures(stack, shown["first_day"], datetime.now(timezone.utc), tagged)
    assert shown["per_dag"] == rest["per_dag"] and {dag_id for dag_id, _ in shown["per_dag"]} <= set(tagged)
    assert shown["total"] == sum(rest["per_dag"].values())
    assert shown["per_dag"][("yellow_cab_sequential_ingest", "failed")] >= 1
    shot(page, artifacts, "09-dashboard-tag-walkthrough")
