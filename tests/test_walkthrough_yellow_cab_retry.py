"""Walkthrough 3_4: `yellow_cab_retry_main` + `yellow_cab_retry_subflow` on a real Airflow (the main DAG
waits for subflow runs the scheduler executes) and the GCS/BigQuery emulators.

The three generated retry files are uploaded under this module's own prefix (the DAG's `prefix`
param), so the shared emulators' yc-retry/ folder is left alone. Expected rows are computed from the
CSV files themselves with DuckDB, not through BigQuery.
"""
from __future__ import annotations

import pytest

from include.zoomcamp.walkthrough import samples
from include.zoomcamp.walkthrough.yellow_cab.tables import YELLOW_COLUMNS
from include.zoomcamp.walkthrough.yellow_cab_retry import cleaning, files, tables
from tests.fixtures.yellow_cab import BUCKET, PROJECT, bigquery_client, storage_client

MAIN, SUBFLOW = "yellow_cab_retry_main", "yellow_cab_retry_subflow"
PREFIX = "tests/yc-retry/"
GOOD, DIRTY, BROKEN = samples.RETRY_GOOD, samples.RETRY_DIRTY, samples.RETRY_BROKEN
UNREADABLE = "yellow_tripdata_2024-05.csv"  # empty: no header, so it fails before its subflow runs
FILES = sorted((GOOD, DIRTY, BROKEN, UNREADABLE))  # list_files' order: the map indexes
_DUCKDB_TYPE = {"INTEGER": "BIGINT", "FLOAT": "DOUBLE", "TIMESTAMP": "TIMESTAMP", "STRING": "VARCHAR"}


def expected_rows(path) -> dict[str, int]:
    """rows, rows whose every value casts (strict), rows whose required fields cast (kept by the fallback)."""
    import duckdb

    types = dict(YELLOW_COLUMNS)

    def casts(column: str) -> str:
        value = f"NULLIF(TRIM(\"{column}\"), '')"
        return f"TRY_CAST({value} AS {_DUCKDB_TYPE[types[column]]}) IS NOT NULL"

    with duckdb.connect() as con:
        con.execute("CREATE TABLE f AS SELECT * FROM read_csv(?, header = true, all_varchar = true)", [str(path)])
        columns = [row[0] for row in con.execute("DESCRIBE f").fetchall()]
        every_value = " AND ".join(f"({casts(c)} OR NULLIF(TRIM(\"{c}\"), '') IS NULL)" for c in columns)
        required = " AND ".join(casts(c) for c in cleaning.REQUIRED_COLUMNS)
        total, strict, kept = con.execute(
            f"SELECT count(*), count(*) FILTER ({every_value} AND {required}), count(*) FILTER ({required}) FROM f"
        ).fetchone()
    return {"rows": total, "strict": strict, "kept": kept}


def query(bq, sql: str) -> list[tuple]:
    return [tuple(row.values()) for row in bq.query(sql).result()]


def rows_by_file(bq, table: str, column: str) -> dict[tuple[str, str], int]:
    """(file name, `column`) -> rows of this module's files in `table`."""
    sql = (f"SELECT source_uri, {column}, count(*) FROM `{PROJECT}.{tables.DATASET}.{table}` "
           f"WHERE STARTS_WITH(source_uri, 'gs://{BUCKET}/{PREFIX}') GROUP BY 1, 2")
    return {(uri.rsplit("/", 1)[1], value): n for uri, value, n in query(bq, sql)}


def object_names(prefix: str = PREFIX) -> set[str]:
    return {b.name.removeprefix(prefix) for b in storage_client().list_blobs(BUCKET, prefix=prefix)}


@pytest.fixture(scope="module")
def uploaded(tmp_path_factory, services):
    """The three retry files and an empty one under PREFIX/data/ (and in a local directory), nothing else
    under PREFIX; returns file name -> (generation, local path)."""
    client, bq = storage_client(), bigquery_client()
    bucket = client.lookup_bucket(BUCKET) or client.create_bucket(BUCKET)
    for blob in client.list_blobs(BUCKET, prefix=PREFIX):
        blob.delete()
    local = tmp_path_factory.mktemp("yc-retry")
    by_name = {}
    for name, data in {**samples.retry_objects(PREFIX), f"{PREFIX}data/{UNREADABLE}": b""}.items():
        blob = bucket.blob(name)
        blob.upload_from_string(data)
        base = name.rsplit("/", 1)[1]
        (local / base).write_bytes(data)
        by_name[base] = (int(blob.generation), local / base)
    yield by_name
    for blob in client.list_blobs(BUCKET, prefix=PREFIX):
        blob.delete()
    existing = {t.table_id for t in bq.list_tables(bq.create_dataset(f"{PROJECT}.{tables.DATASET}", exists_ok=True))}
    for table in {tables.CLEAN_TABLE, tables.REJECTED_TABLE} & existing:  # created by plant_leftover_rows
        bq.query(f"DELETE FROM `{PROJECT}.{tables.DATASET}.{table}` "
                 f"WHERE STARTS_WITH(source_uri, 'gs://{BUCKET}/{PREFIX}')").result()


def test_the_sample_files_are_uploaded_by_walkthrough_setup():
    names = {n for n in samples.sample_objects() if n.startswith(samples.RETRY_PREFIX)}
    assert names == {f"yc-retry/data/{n}" for n in (GOOD, DIRTY, BROKEN)}


def test_the_samples_are_good_dirty_and_broken(uploaded):
    good, dirty, broken = (expected_rows(uploaded[n][1]) for n in (GOOD, DIRTY, BROKEN))
    assert good == {"rows": samples.RETRY_ROWS, "strict": samples.RETRY_ROWS, "kept": samples.RETRY_ROWS}
    assert dirty["strict"] < dirty["kept"] < dirty["rows"]
    assert dirty["kept"] >= dirty["rows"] * cleaning.MAX_REJECTED_SHARE
    assert broken["strict"] == broken["kept"] == 0


def test_columns_match_by_name_and_a_missing_required_one_is_named():
    header = ["vendorid", "tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID", "DOLocationID",
              "trip_distance", "fare_amount", "total_amount", "airport_fee", "mystery"]
    columns = cleaning.mapped_columns(header, "gs://b/f.csv")
    assert ("airport_fee", "Airport_fee", "FLOAT") in columns and ("vendorid", "VendorID", "INTEGER") in columns
    assert "mystery" not in {c for c, _, _ in columns}
    with pytest.raises(files.RetryFileError, match=r"gs://b/f.csv: required column\(s\) \['fare_amount'\] missing"):
        cleaning.mapped_columns([c for c in header if c != "fare_amount"], "gs://b/f.csv")


def test_strict_sql_raises_on_empty_required_fields_only():
    sql = cleaning.strict_insert_sql("p", "stage_x", [("VendorID", "VendorID", "INTEGER"),
                                                   ("fare_amount", "fare_amount", "FLOAT")])
    assert "CAST(NULLIF(TRIM(`VendorID`), '') AS INT64), " in sql
    assert "COALESCE(CAST(NULLIF(TRIM(`fare_amount`), '') AS FLOAT64), ERROR('required column fare_amount" in sql


@pytest.mark.parametrize("conf", [{}, {"staging_table": "trips_clean", "source_uri": "gs://b/o"},
                                  {"staging_table": "stage_1", "source_uri": ""}])
def test_the_subflow_refuses_a_run_without_the_main_dags_conf(conf):
    with pytest.raises(files.RetryFileError, match="trigger that DAG instead"):
        cleaning.subflow_conf(conf)


@pytest.fixture(scope="module")
def stack(airflow_stack):
    for dag_id in (MAIN, SUBFLOW):
        airflow_stack.wait_for_dag(dag_id)
    return airflow_stack


def mapped_states(stack, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
    tis = stack.all_task_instances(dag_id, run_id)
    return {(ti["task_id"], ti["map_index"]): ti["state"] for ti in tis}


def plant_leftover_rows(bq, uploaded) -> None:
    """A row of the broken and of the unreadable file in trips_clean, as an earlier crashed attempt of the
    same object generation could leave: a failed file must leave none (the tables are created as the DAGs
    create them)."""
    from google.cloud import bigquery

    bq.create_dataset(f"{PROJECT}.{tables.DATASET}", exists_ok=True)
    for table, resource in ((tables.CLEAN_TABLE, tables.clean_table_resource()),
                            (tables.REJECTED_TABLE, tables.rejected_table_resource())):
        bq.create_table(bigquery.Table.from_api_repr({"tableReference": {
            "projectId": PROJECT, "datasetId": tables.DATASET, "tableId": table}, **resource}), exists_ok=True)
    for name in (BROKEN, UNREADABLE):
        bq.query(f"INSERT INTO `{PROJECT}.{tables.DATASET}.{tables.CLEAN_TABLE}` (source_uri, source_generation, "
                 f"cleaning) VALUES ('gs://{BUCKET}/{PREFIX}data/{name}', {uploaded[name][0]}, 'leftover')").result()


@pytest.fixture(scope="module")
def first_run(stack, uploaded):
    """Leftover rows of the two failing files, then one main run over the four files."""
    bq = bigquery_client()
    plant_leftover_rows(bq, uploaded)
    assert {name for name, _ in rows_by_file(bq, tables.CLEAN_TABLE, "cleaning")} == {BROKEN, UNREADABLE}
    run_id = stack.trigger(MAIN, {"prefix": PREFIX})
    return run_id, stack.wait_for_run(MAIN, run_id), bq


ROUTED = {f"archive/{GOOD}", f"archive/{DIRTY}", f"errors/{BROKEN}", f"errors/{UNREADABLE}"}


def test_good_and_dirty_files_are_archived_and_the_failed_ones_rolled_back(stack, uploaded, first_run):
    run_id, run, bq = first_run
    assert object_names() == ROUTED
    good, dirty = expected_rows(uploaded[GOOD][1]), expected_rows(uploaded[DIRTY][1])
    assert rows_by_file(bq, tables.CLEAN_TABLE, "cleaning") == {
        (GOOD, cleaning.STRICT): good["rows"], (DIRTY, cleaning.SAFE_CAST): dirty["kept"]}
    rejected = rows_by_file(bq, tables.REJECTED_TABLE, "reject_reason")
    assert sum(rejected.values()) == dirty["rows"] - dirty["kept"]
    assert {name for name, _ in rejected} == {DIRTY}
    assert all(reason.split(":")[1].strip() in cleaning.REQUIRED_COLUMNS for _, reason in rejected)

    # the run ends failed, as documented: a failed file's archive instance (a leaf) is upstream_failed
    assert run["state"] == "failed"
    states = mapped_states(stack, MAIN, run_id)
    index = {name: i for i, name in enumerate(FILES)}
    for name in (GOOD, DIRTY):
        assert {t: states[(f"process_file.{t}", index[name])] for t in (
            "load_staging", "run_subflow", "archive", "rollback", "move_to_errors", "drop_staging")} == {
            "load_staging": "success", "run_subflow": "success", "archive": "success",
            "rollback": "skipped", "move_to_errors": "skipped", "drop_staging": "success"}
    assert {t: states[(f"process_file.{t}", index[BROKEN])] for t in (
        "run_subflow", "archive", "rollback", "move_to_errors", "drop_staging")} == {
        "run_subflow": "failed", "archive": "upstream_failed", "rollback": "success",
        "move_to_errors": "success", "drop_staging": "success"}
    assert {t: states[(f"process_file.{t}", index[UNREADABLE])] for t in (
        "load_staging", "run_subflow", "archive", "rollback", "move_to_errors", "drop_staging")} == {
        "load_staging": "failed", "run_subflow": "upstream_failed", "archive": "upstream_failed",
        "rollback": "success", "move_to_errors": "success", "drop_staging": "success"}
    # the unreadable file's subflow never ran: its leftover row left through the rollback
    rolled_back = stack.xcom(MAIN, run_id, "process_file.rollback", map_index=index[UNREADABLE])
    assert rolled_back == {tables.CLEAN_TABLE: 1, tables.REJECTED_TABLE: 0}


def test_the_subflow_falls_back_and_fails_only_when_both_inserts_fail(stack, uploaded, first_run):
    children = {r["conf"]["source_uri"].rsplit("/", 1)[1]: r for r in stack.runs(SUBFLOW)
                if r.get("conf", {}).get("source_uri", "").startswith(f"gs://{BUCKET}/{PREFIX}")}
    assert {name: r["state"] for name, r in children.items()} == {
        GOOD: "success", DIRTY: "success", BROKEN: "failed"}
    expected = {GOOD: ("success", "skipped", "success"), DIRTY: ("failed", "success", "success"),
                BROKEN: ("failed", "failed", "upstream_failed")}
    for name, (strict, fallback, result) in expected.items():
        tis = stack.task_instances(SUBFLOW, children[name]["dag_run_id"])
        assert (tis["strict_insert"]["state"], tis["safe_cast_insert"]["state"],
                tis["cleaning_result"]["state"]) == (strict, fallback, result), name
    broken_log = stack.task_log(SUBFLOW, children[BROKEN]["dag_run_id"], "safe_cast_insert")
    assert f"would reject {samples.RETRY_ROWS} of {samples.RETRY_ROWS} rows" in broken_log


def test_staging_tables_are_dropped(uploaded, first_run):
    bq = bigquery_client()
    staging = {files.staging_table_name(f"gs://{BUCKET}/{PREFIX}data/{name}", generation)
               for name, (generation, _) in uploaded.items()}
    table_ids = {t.table_id for t in bq.list_tables(f"{PROJECT}.{tables.DATASET}")}
    assert tables.CLEAN_TABLE in table_ids and not staging & table_ids


def test_a_rerun_with_nothing_new_adds_nothing(stack, uploaded, first_run):
    bq = bigquery_client()
    before = (rows_by_file(bq, tables.CLEAN_TABLE, "cleaning"),
              rows_by_file(bq, tables.REJECTED_TABLE, "reject_reason"))
    run_id = stack.trigger(MAIN, {"prefix": PREFIX})
    assert stack.wait_for_run(MAIN, run_id)["state"] == "success"
    assert stack.xcom(MAIN, run_id, "list_files") == []
    assert (rows_by_file(bq, tables.CLEAN_TABLE, "cleaning"),
            rows_by_file(bq, tables.REJECTED_TABLE, "reject_reason")) == before
    assert object_names() == ROUTED
