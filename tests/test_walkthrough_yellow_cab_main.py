"""Walkthrough 3_3: `yellow_cab_main` and `yellow_cab_subflow` on a real Airflow (the main run triggers the
subflow and waits for a run the scheduler executes) and the GCS/BigQuery emulators.

Every table the subflow builds is compared with pandas over the same generated Parquet files and zone
CSV, the rules written again here (not imported); files move to yellow-cab-archive/ only after the
subflow succeeded; a broken zone lookup fails the subflow and the main run, archiving nothing; a broken
file fails only its own load, the others go on to the archive. The emulators are shared by the session:
the module starts from an empty `raw_data` and leaves yellow-cab/ as walkthrough_setup would (the
samples, nothing archived).
"""
from __future__ import annotations

import io
from collections import Counter
from datetime import datetime

import pytest

from include.zoomcamp.walkthrough import samples
from tests.fixtures.yellow_cab import (
    ARCHIVE,
    BUCKET,
    DATASET,
    PREFIX,
    PROJECT,
    as_setup_leaves_it,
    bigquery_client,
    table,
    upload,
    yellow_parquet,
)

MAIN, SUBFLOW, SEQUENTIAL = "yellow_cab_main", "yellow_cab_subflow", "yellow_cab_sequential_ingest"
RUN_TIMEOUT = 300
DETECTIONS = ("suspicious_trips", "short_trips", "long_trips", "invalid_location_trips")
ZONE_COLUMNS = "pickup_borough, dropoff_zone"
TRIP_COLUMNS = "source_uri, tpep_pickup_datetime, tpep_dropoff_datetime, PULocationID, DOLocationID, fare_amount"


@pytest.fixture(scope="module")
def bq(services):
    client = bigquery_client()
    client.create_dataset(f"{PROJECT}.{DATASET}", exists_ok=True)
    return client


@pytest.fixture
def bucket(bq):
    """Each test starts as walkthrough_setup leaves things (the samples under yellow-cab/, nothing archived,
    an empty raw_data: the subflow reads all of it) and leaves them so, but for other sources' rows."""
    yield as_setup_leaves_it(bq, all_rows=True)
    as_setup_leaves_it(bq, all_rows=False)


@pytest.fixture(scope="module")
def stack(airflow_stack):
    for dag_id in (MAIN, SUBFLOW, SEQUENTIAL):
        airflow_stack.wait_for_dag(dag_id)
    return airflow_stack


def run(stack, dag_id: str) -> tuple[str, str]:
    """Trigger a run and wait for it; returns its id and final state."""
    run_id = stack.trigger(dag_id)
    return run_id, stack.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)["state"]


def task_instances(stack, dag_id: str, run_id: str) -> list[dict]:
    return stack.all_task_instances(dag_id, run_id)


def names(bucket, prefix: str) -> set[str]:
    return {b.name for b in bucket.client.list_blobs(BUCKET, prefix=prefix)}


def scalar(bq, sql: str):
    return list(bq.query(sql).result())[0][0]


def raw_rows(bq, name: str) -> int:
    return scalar(bq, f"SELECT count(*) FROM {table('raw_data')} WHERE source_uri = 'gs://{BUCKET}/{name}'")


# -- the expected tables, from the files themselves -----------------------------------------------------------
def expected_trips(objects: dict[str, bytes], zones_csv: bytes):
    """pandas: every trip of the Parquet files with the rules' flags and its zones, written independently of
    include/zoomcamp/walkthrough/yellow_cab/quality.py."""
    import pandas as pd
    import pyarrow.parquet as pq

    frames = []
    for name, data in objects.items():
        frame = pq.read_table(io.BytesIO(data), columns=[
            "tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID", "DOLocationID", "trip_distance",
            "fare_amount", "total_amount"]).to_pandas()
        frame["object"] = name
        frames.append(frame)
    trips = pd.concat(frames, ignore_index=True)
    zones = pd.read_csv(io.BytesIO(zones_csv), keep_default_na=False)  # "N/A" is a zone name here
    known = set(zones["LocationID"])
    seconds = (trips["tpep_dropoff_datetime"] - trips["tpep_pickup_datetime"]).dt.total_seconds()
    distance, fare, total = trips["trip_distance"], trips["fare_amount"], trips["total_amount"]
    trips["suspicious_trips"] = (fare < 0) | (total < 0) | ((distance == 0) & (fare > 0))
    trips["short_trips"] = (seconds < 60) | (distance < 0.1)
    trips["long_trips"] = (seconds > 3 * 60 * 60) | (distance > 100)
    ids = trips[["PULocationID", "DOLocationID"]]
    trips["invalid_location_trips"] = (~ids.isin(known)).any(axis=1) | ids.isin([264, 265]).any(axis=1)
    trips["minutes"] = seconds / 60
    trips["pickup_hour"] = trips["tpep_pickup_datetime"].dt.hour
    by_id = zones.set_index("LocationID")
    trips["pickup_borough"] = trips["PULocationID"].map(by_id["Borough"])
    trips["dropoff_zone"] = trips["DOLocationID"].map(by_id["Zone"])
    return trips


def key(obj: str, pickup: datetime, dropoff: datetime, pu: int, do: int, fare: float) -> tuple:
    naive = [t.replace(tzinfo=None).isoformat() for t in (pickup, dropoff)]
    return (obj, *naive, int(pu), int(do), round(float(fare), 2))


def expected_keys(trips, mask=None, zones: bool = False) -> Counter:
    rows = trips if mask is None else trips[mask]
    return Counter(key(r.object, r.tpep_pickup_datetime.to_pydatetime(), r.tpep_dropoff_datetime.to_pydatetime(),
                       r.PULocationID, r.DOLocationID, r.fare_amount)
                   + ((_none(r.pickup_borough), _none(r.dropoff_zone)) if zones else ())
                   for r in rows.itertuples())


def _none(value):
    return None if value != value else value  # pandas' NaN for a zone the lookup lacks


def table_keys(bq, name: str, extra: str = "") -> Counter:
    rows = bq.query(f"SELECT {TRIP_COLUMNS}{', ' + extra if extra else ''} FROM {table(name)}").result()
    return Counter(key(r[0].removeprefix(f"gs://{BUCKET}/"), *r[1:6]) + tuple(r[6:]) for r in rows)


def expected_aggregation(trips, by: str) -> dict:
    groups = trips.groupby(by, dropna=False)
    return {_none(k): (len(g), round(g["total_amount"].sum(), 2), round(g["fare_amount"].mean(), 2),
                                      round(g["trip_distance"].mean(), 2), round(g["minutes"].mean(), 2))
            for k, g in groups}


def table_aggregation(bq, name: str, column: str) -> dict:
    rows = bq.query(f"SELECT {column}, trips, total_amount, avg_fare_amount, avg_trip_distance, avg_trip_minutes "
                    f"FROM {table(name)}").result()
    return {r[0]: tuple(r[1:]) for r in rows}


def assert_aggregation_equal(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for group, values in expected.items():
        assert actual[group][0] == values[0], group
        assert actual[group][1:] == pytest.approx(values[1:], abs=0.011), group


# -- the tests ----------------------------------------------------------------------------------------------
def test_main_loads_runs_the_subflow_then_archives(stack, bucket, bq):
    objects = {n: d for n, d in samples.sample_objects().items() if n.startswith(PREFIX)}
    assert names(bucket, PREFIX) == set(objects)
    run_id, state = run(stack, MAIN)
    assert state == "success"

    tis = task_instances(stack, MAIN, run_id)
    states = Counter((ti["task_id"], ti["state"]) for ti in tis)
    assert states == Counter({(t, "success"): 1 for t in ("create_dataset", "create_raw_table", "create_ingest_log",
                                                          "list_files", "loaded_files", "run_subflow",
                                                          "all_files_loaded")}
                             | {("load_file", "success"): 2, ("archive_file", "success"): 2})
    child_run_id = stack.xcom(MAIN, run_id, "run_subflow", "trigger_run_id")
    child = stack.api("GET", stack.run_path(SUBFLOW, child_run_id))
    assert child["state"] == "success"
    archived = stack.mapped(MAIN, run_id, "archive_file")
    assert set(archived) == set(objects)
    assert all(ti["start_date"] > child["end_date"] for ti in archived.values())  # only after the subflow
    assert names(bucket, PREFIX) == set()
    assert {n: bucket.blob(n).download_as_bytes() for n in names(bucket, ARCHIVE)} == {
        ARCHIVE + n.removeprefix(PREFIX): data for n, data in objects.items()}

    trips = expected_trips(objects, samples.zone_lookup_csv())
    assert table_keys(bq, "trips_enriched", ZONE_COLUMNS) == expected_keys(trips, zones=True)
    flagged = trips[list(DETECTIONS)].any(axis=1)
    for name in DETECTIONS:
        assert trips[name].sum() > 0, f"the samples hold no {name}: this check would prove nothing"
        assert table_keys(bq, name) == expected_keys(trips, trips[name]), name
    assert table_keys(bq, "trips_curated") == expected_keys(trips, ~flagged)
    assert 0 < (~flagged).sum() < len(trips)
    # curated = enriched minus every flagged trip, from the tables themselves
    flagged_rows = Counter()
    for name in DETECTIONS:
        flagged_rows |= table_keys(bq, name)
    assert table_keys(bq, "trips_curated") == table_keys(bq, "trips_enriched") - flagged_rows
    assert_aggregation_equal(table_aggregation(bq, "trips_by_borough", "pickup_borough"),
                             expected_aggregation(trips, "pickup_borough"))
    assert_aggregation_equal(table_aggregation(bq, "trips_by_hour", "pickup_hour"),
                             expected_aggregation(trips, "pickup_hour"))


def test_a_rerun_adds_nothing_and_the_subflow_rebuilds(stack, bucket, bq):
    assert run(stack, MAIN)[1] == "success"
    counts = {name: scalar(bq, f"SELECT count(*) FROM {table(name)}")
              for name in ("raw_data", "trips_enriched", *DETECTIONS, "trips_curated")}
    run_id, state = run(stack, MAIN)
    assert state == "success"
    assert {ti["task_id"]: ti["state"] for ti in task_instances(stack, MAIN, run_id)
            if ti["task_id"] in ("load_file", "run_subflow", "archive_file")} == {
        "load_file": "skipped", "run_subflow": "skipped", "archive_file": "skipped"}  # nothing new to load
    run_id, state = run(stack, SUBFLOW)
    assert state == "success"
    assert {name: scalar(bq, f"SELECT count(*) FROM {table(name)}") for name in counts} == counts


def test_a_failed_subflow_archives_nothing_and_a_broken_file_holds_back_only_itself(stack, bucket, bq):
    """Run 1: a broken zone lookup fails the subflow and the main run, nothing is archived, while a truncated
    and a non-Parquet file fail their own loads. Run 2, the lookup fixed: the good file, already loaded, goes
    through the subflow to the archive; the broken files fail again and stay."""
    good = "yellow-cab/2025/yellow_tripdata_2025-02.parquet"
    truncated, not_parquet = "yellow-cab/yellow_tripdata_truncated.parquet", "yellow-cab/notes.parquet"
    upload(good, yellow_parquet(300, seed=7))
    upload(truncated, yellow_parquet(200, seed=8, truncate=True))
    upload(not_parquet, b"VendorID,fare_amount\n1,12.5\n")
    broken = (truncated, not_parquet)
    sample_files = names(bucket, PREFIX) - {good, *broken}
    assert sample_files and names(bucket, ARCHIVE) == set()
    try:
        upload(samples.ZONES_OBJECT, b"LocationID,Borough,Zone,service_zone\nnot-a-number,Queens,Astoria,Boro Zone\n")
        try:
            run_id, state = run(stack, MAIN)
        finally:
            upload(samples.ZONES_OBJECT, samples.zone_lookup_csv())
        assert state == "failed"
        assert {n: ti["state"] for n, ti in stack.mapped(MAIN, run_id, "load_file").items()} == {
            **{n: "success" for n in sample_files}, good: "success", truncated: "failed", not_parquet: "failed"}
        tis = {ti["task_id"]: ti for ti in task_instances(stack, MAIN, run_id)}
        assert tis["run_subflow"]["state"] == "failed" and tis["run_subflow"]["try_number"] == 1  # not retried
        assert tis["archive_file"]["state"] == "upstream_failed"
        child_run_id = stack.xcom(MAIN, run_id, "run_subflow", "trigger_run_id")
        child = stack.task_instances(SUBFLOW, child_run_id)
        assert child["load_zone_lookup"]["state"] == "failed" and child["load_zone_lookup"]["try_number"] == 1
        assert child["trips_enriched"]["state"] == "upstream_failed"
        assert names(bucket, PREFIX) == {*sample_files, good, *broken} and names(bucket, ARCHIVE) == set()
        assert raw_rows(bq, good) == 300  # in BigQuery, yet kept for the rerun

        run_id, state = run(stack, MAIN)
        assert state == "failed"
        loads = stack.mapped(MAIN, run_id, "load_file")
        assert {n: ti["state"] for n, ti in loads.items()} == {
            **{n: "success" for n in sample_files}, good: "success", truncated: "failed", not_parquet: "failed"}
        for name in broken:
            assert loads[name]["try_number"] == 1
            log = stack.task_log(MAIN, run_id, "load_file", map_index=loads[name]["map_index"])
            assert f"gs://{BUCKET}/{name}#" in log
        tis = {ti["task_id"]: ti["state"] for ti in task_instances(stack, MAIN, run_id)}
        assert tis["run_subflow"] == "success" and tis["all_files_loaded"] == "upstream_failed"
        assert set(stack.mapped(MAIN, run_id, "archive_file")) == {*sample_files, good}
        assert names(bucket, PREFIX) == set(broken)
        assert names(bucket, ARCHIVE) == {ARCHIVE + n.removeprefix(PREFIX) for n in (*sample_files, good)}
        assert raw_rows(bq, good) == 300 and all(raw_rows(bq, name) == 0 for name in broken)
        assert scalar(bq, f"SELECT count(*) FROM {table('trips_enriched')}") == scalar(
            bq, f"SELECT count(*) FROM {table('raw_data')}")
    finally:
        for name in broken:
            blob = bucket.get_blob(name)
            if blob is not None:
                blob.delete()


@pytest.mark.timeout(900)
def test_3_2_and_3_3_at_once_load_each_row_once(stack, bucket, bq):
    """Both DAGs load yellow-cab/ into raw_data: triggered together, every file's rows arrive once, each
    generation is logged once, and no staging table is left. Six files: 3_3 loads five at once while 3_2
    goes through them one by one, so the two DAGs reach the same files at the same time."""
    import pyarrow.parquet as pq

    for month in range(1, 5):
        upload(f"{PREFIX}2025/yellow_tripdata_2025-0{month}.parquet", yellow_parquet(1000 + month, seed=90 + month))
    expected = {f"gs://{BUCKET}/{blob.name}": pq.read_metadata(io.BytesIO(blob.download_as_bytes())).num_rows
                for blob in bucket.client.list_blobs(BUCKET, prefix=PREFIX)}
    assert len(expected) == 6
    run_ids = {dag_id: stack.trigger(dag_id) for dag_id in (SEQUENTIAL, MAIN)}
    states = {dag_id: stack.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)["state"]
              for dag_id, run_id in run_ids.items()}
    assert states == {SEQUENTIAL: "success", MAIN: "success"}

    loaded = bq.query(f"SELECT source_uri, count(*) FROM {table('raw_data')} GROUP BY 1").result()
    timings = {dag_id: sorted((ti["start_date"], ti["end_date"], ti["rendered_map_index"])
                              for ti in stack.mapped(dag_id, run_id, "load_file").values())
               for dag_id, run_id in run_ids.items()}
    assert dict(loaded) == expected, timings
    logged = bq.query(f"SELECT object_name, generation, count(*), sum(rows_loaded) FROM {table('ingest_log')} "
                      f"WHERE bucket = '{BUCKET}' AND STARTS_WITH(object_name, '{PREFIX}') GROUP BY 1, 2").result()
    assert {f"gs://{BUCKET}/{r[0]}": (r[2], r[3]) for r in logged} == {uri: (1, n) for uri, n in expected.items()}
    statuses = {uri: sorted(stack.xcom(dag_id, run_id, "load_file", map_index=ti["map_index"])["status"]
                            for dag_id, run_id in run_ids.items()
                            for ti in stack.mapped(dag_id, run_id, "load_file").values()
                            if f"gs://{BUCKET}/{ti['rendered_map_index']}" == uri)
                for uri in expected}
    assert statuses == {uri: ["already_loaded", "loaded"] for uri in expected}  # one DAG loaded it, once
    assert [t.table_id for t in bq.list_tables(f"{PROJECT}.{DATASET}") if t.table_id.startswith("_stage_")] == []
