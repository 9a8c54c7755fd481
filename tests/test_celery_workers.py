"""The CeleryExecutor as `make run EXECUTOR=celery WORKERS=2` runs it: Redis (devstack/redis.py), the api-server,
scheduler, dag-processor and triggerer, and two Celery workers, each with its own data and temporary dir and,
through bubblewrap, its own view of the disk (devstack/workers.py).

A cluster policy on this stack only (tests/fixtures/celery_routing) sends each task to the other worker than
the tasks right before it, so everything a task hands to the next crosses workers. Course and walkthrough
DAGs succeed through the scheduler that way; a DAG handing over a path of its worker's disk fails, and the
same DAG with both tasks on one worker passes (the check can fail, and fails for that reason only).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from devstack import settings, workers
from devstack.emulators import ensure_bucket
from devstack.postgres import free_port
from devstack.redis import RedisServer
from include.zoomcamp import config
from tests.conftest import REPO_ROOT, artifacts_dir
from tests.fixtures.gemini_standin import connection_json
from tests.fixtures.services import _with_database
from tests.fixtures.taxi import FileServer, forget_file, write_taxi_gz

pytestmark = [pytest.mark.celery, pytest.mark.timeout(1500)]

NAME = "celery_stack"
FILES_PREFIX = "celery-test-files"
BUCKET = config.GCP_DEFAULTS[config.GCP_BUCKET_NAME_VAR]
ROWS = 300
CHECK_DAGS = REPO_ROOT / "tests" / "fixtures" / "celery_dags"
POLICY = REPO_ROOT / "tests" / "fixtures" / "celery_routing"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


@pytest.fixture(scope="module")
def celery_stack(services):
    """Two isolated Celery workers on Redis, beside the session's other stack (own home and API port)."""
    broker = RedisServer("redis-celery-test", services.root / "redis-celery-test", free_port(0))
    broker.start()
    ensure_bucket(services.env["STORAGE_EMULATOR_HOST"], BUCKET)
    bundles = [{"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(REPO_ROOT / "dags")}},
               {"name": "celery-checks", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(CHECK_DAGS)}}]
    env = {**settings.celery_environment(broker.url, _with_database(services.metadata_uri, NAME), 2,
                                         f"gs://{BUCKET}/{FILES_PREFIX}"),
           workers.ISOLATION_ENV: "bwrap",  # fails rather than running the workers on a shared disk
           workers.CONCURRENCY_ENV: "2",
           "PYTHONPATH": f"{REPO_ROOT}:{POLICY}",
           "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles)}
    log = artifacts_dir("airflow") / "celery-stack.log"
    log.unlink(missing_ok=True)
    try:
        with services.airflow_stack(NAME, log, env, own_home_and_port=True) as stack:
            yield stack
    finally:
        broker.stop()


def _run(stack, dag_id: str, conf: dict | None = None, timeout: float = 600) -> tuple[str, dict]:
    stack.wait_for_dag(dag_id)
    run_id = stack.trigger(dag_id, conf)
    return run_id, stack.wait_for_run(dag_id, run_id, timeout=timeout)


def _queues(stack, dag_id: str, run_id: str) -> dict[str, str]:
    return {ti["task_id"]: ti["queue"] for ti in stack.all_task_instances(dag_id, run_id)}


def _assert_succeeded_on_both_workers(stack, dag_id: str, run_id: str, run: dict) -> None:
    tis = stack.all_task_instances(dag_id, run_id)
    failed = {ti["task_id"]: ti["state"] for ti in tis if ti["state"] not in ("success", "skipped")}
    assert run["state"] == "success" and not failed, (failed, [stack.task_log(dag_id, run_id, t) for t in failed])
    assert {ti["queue"] for ti in tis if ti["state"] == "success"} == {"worker-1", "worker-2"}, _queues(
        stack, dag_id, run_id)


def test_each_worker_has_its_own_data_and_temporary_dir_and_cannot_see_the_others(celery_stack, services):
    run_id, run = _run(celery_stack, "local_path_same_worker")
    assert run["state"] == "success"
    assert celery_stack.xcom("local_path_same_worker", run_id, "read_file") == "written by worker-1"
    written = celery_stack.xcom("local_path_same_worker", run_id, "write_file")
    worker_1 = workers.Worker(1, Path(services.env["ZOOMCAMP_DATA_DIR"]))
    assert written.startswith(f"{worker_1.tmp_dir}/")  # its TMPDIR, on the machine's real disk
    assert Path(written).read_text() == "written by worker-1"
    assert not workers.Worker(2, worker_1.root).tmp_dir.joinpath(Path(written).relative_to(worker_1.tmp_dir)).exists()


def test_a_dag_handing_over_a_local_path_fails_across_workers(celery_stack):
    run_id, run = _run(celery_stack, "local_path_handover")
    assert run["state"] == "failed"
    tis = celery_stack.task_instances("local_path_handover", run_id)
    assert (tis["write_file"]["state"], tis["write_file"]["queue"]) == ("success", "worker-1")
    assert (tis["read_file"]["state"], tis["read_file"]["queue"]) == ("failed", "worker-2")
    written = celery_stack.xcom("local_path_handover", run_id, "write_file")
    assert Path(written).exists()  # the file is there, on worker-1's disk
    log = celery_stack.task_log("local_path_handover", run_id, "read_file")
    assert "FileNotFoundError" in log and written in log


def test_flow_04_loads_a_month_across_workers(celery_stack, pg, tmp_path):
    forget_file(pg, "green_tripdata", "green_tripdata_2020-06.csv")
    write_taxi_gz(tmp_path, "green", 2020, 6, ROWS)
    with FileServer(tmp_path) as site, celery_stack.variables({config.TAXI_DATA_BASE_URL_VAR: site.url}):
        run_id, run = _run(celery_stack, "04_postgres_taxi", {"taxi": "green", "year": "2020", "month": "06"})
    try:
        _assert_succeeded_on_both_workers(celery_stack, "04_postgres_taxi", run_id, run)
        (count,) = pg.execute("SELECT count(*) FROM public.green_tripdata WHERE filename = %s",
                              ["green_tripdata_2020-06.csv"]).fetchone()
        assert count == ROWS
    finally:
        forget_file(pg, "green_tripdata", "green_tripdata_2020-06.csv")


def test_flow_08_loads_a_month_into_bigquery_across_workers(celery_stack, tmp_path):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    write_taxi_gz(tmp_path, "green", 2020, 7, ROWS)
    project, dataset = (config.GCP_DEFAULTS[k] for k in (config.GCP_PROJECT_ID_VAR, config.GCP_DATASET_VAR))
    client = bigquery.Client(project=project, credentials=AnonymousCredentials())
    with FileServer(tmp_path) as site, celery_stack.variables({config.TAXI_DATA_BASE_URL_VAR: site.url}):
        setup_id, setup = _run(celery_stack, "07_gcp_setup")
        assert setup["state"] == "success"
        run_id, run = _run(celery_stack, "08_gcp_taxi", {"taxi": "green", "year": "2020", "month": "07"})
    table = f"`{project}.{dataset}.green_tripdata`"
    try:
        _assert_succeeded_on_both_workers(celery_stack, "08_gcp_taxi", run_id, run)
        rows = list(client.query(f"SELECT count(*) AS n FROM {table} WHERE filename = 'green_tripdata_2020-07.csv'"))
        assert rows[0]["n"] == ROWS
    finally:
        client.query(f"DELETE FROM {table} WHERE filename = 'green_tripdata_2020-07.csv'").result()


def test_flow_03_keeps_its_result_in_the_bucket(celery_stack, tmp_path):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    (tmp_path / "products").mkdir()
    products = [{"brand": "Essence", "price": 10.0}, {"brand": "Essence", "price": 5.0},
                {"brand": "Glamour", "price": 7}]
    (tmp_path / "products" / "index.html").write_text(json.dumps({"products": products}))
    with FileServer(tmp_path) as site, celery_stack.variables({config.PRODUCTS_URL_VAR: f"{site.url}/products"}):
        run_id, run = _run(celery_stack, "03_getting_started_data_pipeline")
    _assert_succeeded_on_both_workers(celery_stack, "03_getting_started_data_pipeline", run_id, run)
    result = celery_stack.xcom("03_getting_started_data_pipeline", run_id, "query")
    assert result["file"].startswith(f"gs://{BUCKET}/{FILES_PREFIX}/results/")
    blob_name = result["file"].removeprefix(f"gs://{BUCKET}/")
    bucket = storage.Client(project="zoomcamp-local", credentials=AnonymousCredentials()).bucket(BUCKET)
    rows = list(csv.DictReader(io.StringIO(bucket.blob(blob_name).download_as_text())))
    assert rows == [{"brand": "Essence", "avg_price": "7.5"}, {"brand": "Glamour", "avg_price": "7.0"}]
    bucket.blob(blob_name).delete()


def test_walkthrough_multistep_hands_its_file_over_through_the_bucket(celery_stack):
    run_id, run = _run(celery_stack, "python-multistep")
    _assert_succeeded_on_both_workers(celery_stack, "python-multistep", run_id, run)
    tis = celery_stack.task_instances("python-multistep", run_id)
    assert tis["write_orders"]["queue"] != tis["read_orders"]["queue"]
    summary = celery_stack.xcom("python-multistep", run_id, "read_orders")
    assert summary["orders"] == 40 and set(summary["products"]) == {"Laptop", "Monitor", "Keyboard", "Mouse"}


@pytest.fixture(scope="module")
def gemini_on_stack(celery_stack, gemini_standin):
    conn = json.loads(connection_json(gemini_standin))
    with celery_stack.connection(config.GEMINI_CONN_ID, {**conn, "extra": json.dumps(conn["extra"])}):
        yield gemini_standin


def test_flow_11_ingests_on_one_worker_and_retrieves_on_the_other(celery_stack, gemini_on_stack, pg, tmp_path):
    sentence = "Plugin versioning lets every team pin the exact plugin versions their flows were tested with."
    (tmp_path / "notes.md").write_text(
        f"# Kestra 1.1\n\n## Plugin versioning\n\n{sentence}\n\n## Other\n\nUnrelated.\n")
    gemini_on_stack.reset()
    with FileServer(tmp_path) as site, celery_stack.variables({config.RAG_DOCUMENT_URL_VAR: f"{site.url}/notes.md"}):
        run_id, run = _run(celery_stack, "11_chat_with_rag", {
            "question": "How does plugin versioning let a team pin plugin versions?", "top_k": 1, "drop": True})
    try:
        _assert_succeeded_on_both_workers(celery_stack, "11_chat_with_rag", run_id, run)
        queues = _queues(celery_stack, "11_chat_with_rag", run_id)
        assert queues["ingest_release_notes"] != queues["retrieve_context"]
        (chat,) = gemini_on_stack.calls("generateContent")
        assert sentence in chat.prompt_text
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {config.RAG_TABLE}")


def test_the_copilot_writes_its_draft_to_the_bucket(celery_stack, gemini_on_stack):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from tests.fixtures import copilot_drafts as drafts

    gemini_on_stack.reset()
    gemini_on_stack.queue_replies(drafts.answer(drafts.VALID))
    run_id, run = _run(celery_stack, "ai_copilot")
    assert run["state"] == "success", celery_stack.task_log("ai_copilot", run_id, "draft_dag")
    result = celery_stack.xcom("ai_copilot", run_id, "draft_dag")
    assert result["path"].startswith(f"gs://{BUCKET}/{FILES_PREFIX}/copilot-drafts/taxi_csv_to_bigquery-")
    blob = storage.Client(project="zoomcamp-local", credentials=AnonymousCredentials()).bucket(BUCKET).blob(
        result["path"].removeprefix(f"gs://{BUCKET}/"))
    assert blob.download_as_text().endswith(drafts.VALID)
    blob.delete()

