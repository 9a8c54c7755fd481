"""Walkthrough setup and 3_2 (`yellow_cab_sequential_ingest`) with dag.test() on the GCS and BigQuery emulators:
setup is idempotent and uploads the samples; every Parquet file under yellow-cab/ is loaded once, rows
counted independently with pyarrow; a truncated file fails its own mapped instance, naming the object."""
from __future__ import annotations

import io

import pytest

from include.zoomcamp.walkthrough import samples
from tests.conftest import fresh_dag, run_dag
from tests.fixtures.yellow_cab import (
    BUCKET,
    DATASET,
    PROJECT,
    as_setup_leaves_it,
    bigquery_client,
    storage_client,
    upload,
    yellow_parquet,
)

SETUP = "walkthrough_setup"
DAG_ID = "yellow_cab_sequential_ingest"
DATASETS = {"kestra_test", "raw", "clean", "YellowCab", "yc_retry"}
BROKEN = "yellow-cab/yellow_tripdata_broken.parquet"
LATE = "yellow-cab/2025/yellow_tripdata_2025-01.parquet"  # a file added after the first load, one level deeper


@pytest.fixture(scope="module")
def bq(services):
    client = bigquery_client()
    client.create_dataset(f"{PROJECT}.{DATASET}", exists_ok=True)
    return client


@pytest.fixture
def bucket(bq):
    """Each test starts as walkthrough_setup leaves things (the samples under yellow-cab/, none of their rows
    in raw_data) and leaves them so."""
    yield as_setup_leaves_it(bq, all_rows=False)
    as_setup_leaves_it(bq, all_rows=False)


def parquet_rows(bucket) -> dict[str, int]:
    """object name -> rows, read from the bucket's Parquet files themselves (not through BigQuery)."""
    import pyarrow.parquet as pq

    return {blob.name: pq.read_metadata(io.BytesIO(blob.download_as_bytes())).num_rows
            for blob in storage_client().list_blobs(BUCKET, prefix=samples.YELLOW_PREFIX)}


def loaded_rows(bq) -> dict[str, int]:
    sql = (f"SELECT source_uri, count(*) FROM `{PROJECT}.{DATASET}.raw_data` "
           f"WHERE STARTS_WITH(source_uri, 'gs://{BUCKET}/{samples.YELLOW_PREFIX}') GROUP BY 1")
    return {uri.removeprefix(f"gs://{BUCKET}/"): n for uri, n in bq.query(sql).result()}


def test_setup_without_samples_creates_the_bucket_and_datasets_and_uploads_nothing(bq, monkeypatch):
    """What a learner on GCP runs before uploading TLC's own files (param upload_samples=false)."""
    from include.zoomcamp import config

    empty_bucket = "zoomcamp-setup-without-samples"
    monkeypatch.setenv(f"AIRFLOW_VAR_{config.GCP_BUCKET_NAME_VAR}", empty_bucket)
    run = run_dag(fresh_dag(SETUP), run_conf={"upload_samples": False})
    assert run.state == "success"
    assert run.get_task_instance("upload_samples").xcom_pull(task_ids="upload_samples") == {}
    client = storage_client()
    assert client.lookup_bucket(empty_bucket) is not None
    assert list(client.list_blobs(empty_bucket)) == []
    assert {d.dataset_id for d in bq.list_datasets(PROJECT)} >= DATASETS
    client.bucket(empty_bucket).delete()


def test_setup_twice_creates_everything_and_uploads_the_samples_once(dagbag, bucket, bq):
    run = run_dag(dagbag.get_dag(SETUP))
    assert run.state == "success"
    generations = {name: bucket.get_blob(name).generation for name in samples.sample_objects()}
    run = run_dag(dagbag.get_dag(SETUP))
    assert run.state == "success"
    assert {d.dataset_id for d in bq.list_datasets(PROJECT)} >= DATASETS
    assert run.get_task_instance("upload_samples").xcom_pull(task_ids="upload_samples") == {
        name: "unchanged" for name in generations}
    assert {name: bucket.get_blob(name).generation for name in generations} == generations
    zones = bucket.get_blob(samples.ZONES_OBJECT).download_as_text().splitlines()
    assert zones[0] == "LocationID,Borough,Zone,service_zone" and len(zones) == 266
    assert set(parquet_rows(bucket)) == {"yellow-cab/yellow_tripdata_2023-01.parquet",
                                         "yellow-cab/yellow_tripdata_2024-01.parquet"}


def test_loads_every_file_once_and_a_rerun_adds_nothing(dagbag, bucket, bq):
    expected = parquet_rows(bucket)
    assert len(expected) == 2 and set(expected.values()) == {samples.SAMPLE_ROWS}
    run = run_dag(dagbag.get_dag(DAG_ID))
    assert run.state == "success"
    assert loaded_rows(bq) == expected
    # both spellings of the airport fee land in the one column
    fees = list(bq.query(f"SELECT count(Airport_fee) FROM `{PROJECT}.{DATASET}.raw_data` "
                         f"WHERE STARTS_WITH(source_uri, 'gs://{BUCKET}/yellow-cab/')").result())[0][0]
    assert fees == sum(expected.values())

    run = run_dag(dagbag.get_dag(DAG_ID))
    assert run.state == "success"
    assert loaded_rows(bq) == expected
    statuses = [ti.xcom_pull(task_ids="load_file", map_indexes=ti.map_index)["status"]
                for ti in run.get_task_instances() if ti.task_id == "load_file"]
    assert statuses == ["already_loaded", "already_loaded"]


def test_a_broken_file_fails_its_own_instance_naming_it_while_the_others_load(dagbag, bucket, bq, capsys):
    upload(BROKEN, yellow_parquet(500, seed=3, truncate=True))
    upload(LATE, yellow_parquet(700, seed=4))
    try:
        run = run_dag(dagbag.get_dag(DAG_ID))
        assert run.state == "failed"
        names = sorted(b.name for b in bucket.client.list_blobs(BUCKET, prefix=samples.YELLOW_PREFIX))  # mapped order
        states = {names[ti.map_index]: ti.state for ti in run.get_task_instances() if ti.task_id == "load_file"}
        assert states == {name: ("failed" if name == BROKEN else "success") for name in names}
        failed = next(ti for ti in run.get_task_instances() if ti.task_id == "load_file" and ti.state == "failed")
        assert failed.try_number == 1  # a broken file is not retried
        assert f"gs://{BUCKET}/{BROKEN}#" in capsys.readouterr().out
        rows = loaded_rows(bq)
        assert BROKEN not in rows and rows[LATE] == 700 and len(rows) == 3
    finally:
        bucket.blob(BROKEN).delete()
