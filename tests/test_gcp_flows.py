"""Flows 06-09 on the local GCS and BigQuery emulators, through the same operators as on GCP."""
from __future__ import annotations

import gzip
import hashlib
import os

import pytest

from include.zoomcamp import config
from include.zoomcamp.taxi.schemas import GREEN, YELLOW
from tests.conftest import fresh_dag, logical_dates, run_dag
from tests.fixtures.taxi import FileServer, taxi_csv_lines, write_taxi_gz

ROWS = 2000
PROJECT = config.GCP_DEFAULTS[config.GCP_PROJECT_ID_VAR]
DATASET = config.GCP_DEFAULTS[config.GCP_DATASET_VAR]
BUCKET = config.GCP_DEFAULTS[config.GCP_BUCKET_NAME_VAR]


@pytest.fixture(scope="module")
def bigquery(services):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery as bq

    assert os.environ["BIGQUERY_EMULATOR_HOST"].startswith("http://127.0.0.1:")
    return bq.Client(project=PROJECT, credentials=AnonymousCredentials())


@pytest.fixture(scope="module")
def storage(services):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    return gcs.Client(project=PROJECT, credentials=AnonymousCredentials())


@pytest.fixture(scope="module")
def gcp_setup(dagbag):
    first = run_dag(dagbag.get_dag("07_gcp_setup"))
    second = run_dag(dagbag.get_dag("07_gcp_setup"))
    return first, second


@pytest.fixture(scope="module")
def taxi_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    for taxi in ("yellow", "green"):
        write_taxi_gz(root, taxi, 2019, 1, ROWS)
    good = write_taxi_gz(root, "green", 2020, 1, ROWS).read_bytes()
    (root / "green" / "green_tripdata_2020-01.csv.gz").write_bytes(good[: len(good) // 2])
    lines = list(taxi_csv_lines("green", 2020, 2, 100))
    lines[40] = ",".join(lines[40].split(",")[:14])
    with gzip.open(root / "green" / "green_tripdata_2020-02.csv.gz", "wt") as out:
        out.write("\n".join(lines) + "\n")
    with FileServer(root) as server:
        yield server.url


@pytest.fixture(autouse=True)
def base_url(taxi_site, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_DATA_BASE_URL", taxi_site)


@pytest.fixture(scope="module")
def green_month_loaded(dagbag, gcp_setup, taxi_site):
    """green 2019-01 merged into BigQuery once for the module's tests that need rows there."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_VAR_TAXI_DATA_BASE_URL", taxi_site)
        run = run_dag(dagbag.get_dag("08_gcp_taxi"), run_conf={"taxi": "green", "year": "2019", "month": "01"})
    assert run.state == "success"


def _count(bigquery, table, where="TRUE"):
    return list(bigquery.query(f"SELECT count(*) FROM `{PROJECT}.{DATASET}.{table}` WHERE {where}").result())[0][0]


def _expected_ids(schema, year, month) -> set[bytes]:
    """MD5 over the course's five fields, computed here from the generated CSV (BigQuery renders
    TIMESTAMP as 'YYYY-MM-DD HH:MM:SS+00')."""
    lines = list(taxi_csv_lines(schema.taxi, year, month, ROWS))
    names = lines[0].split(",")
    pick = [names.index(n) for n in ("VendorID", schema.pickup, schema.dropoff, "PULocationID", "DOLocationID")]
    ids = set()
    for line in lines[1:]:
        fields = line.split(",")
        parts = [fields[i] + ("+00" if 1 <= k <= 2 and fields[i] else "") for k, i in enumerate(pick)]
        ids.add(hashlib.md5("".join(parts).encode()).digest())
    return ids


def test_setup_creates_bucket_and_dataset_and_succeeds_again(gcp_setup, storage, bigquery):
    assert [run.state for run in gcp_setup] == ["success", "success"]
    assert storage.lookup_bucket(BUCKET) is not None
    assert bigquery.get_dataset(f"{PROJECT}.{DATASET}").dataset_id == DATASET


@pytest.mark.parametrize("schema", [GREEN, YELLOW], ids=["green", "yellow"])
def test_taxi_month_through_gcs_into_bigquery(dagbag, gcp_setup, storage, bigquery, schema):
    dag = dagbag.get_dag("08_gcp_taxi")
    conf = {"taxi": schema.taxi, "year": "2019", "month": "01"}
    file_name = schema.file_name("2019", "01")

    run = run_dag(dag, run_conf=conf)
    assert run.state == "success"
    blob = storage.bucket(BUCKET).get_blob(file_name)
    csv_text = "\n".join(taxi_csv_lines(schema.taxi, 2019, 1, ROWS)) + "\n"
    assert blob is not None and blob.size == len(csv_text.encode())
    assert _count(bigquery, schema.table, f"filename = '{file_name}'") == ROWS
    table = bigquery.get_table(f"{PROJECT}.{DATASET}.{schema.table}")
    assert table.time_partitioning.field == schema.pickup and table.time_partitioning.type_ == "DAY"
    fields = {f.name: f for f in table.schema}
    assert fields["unique_row_id"].field_type == "BYTES" and all(f.description for f in table.schema)
    assert [f.name for f in table.schema] == ["unique_row_id", "filename", *schema.column_names]
    ids = {row[0] for row in bigquery.query(
        f"SELECT unique_row_id FROM `{PROJECT}.{DATASET}.{schema.table}` WHERE filename = '{file_name}'").result()}
    assert ids == _expected_ids(schema, 2019, 1)
    assert bigquery.get_table(f"{PROJECT}.{DATASET}.{schema.table}_2019_01").num_rows == ROWS

    rerun = run_dag(dag, run_conf=conf)
    assert rerun.state == "success"
    assert _count(bigquery, schema.table) == ROWS


@pytest.mark.parametrize(("month", "message", "retried"), [("01", "truncated", True),
                                                  ("02", "line 41: 14 fields", False)],
                         ids=["truncated-gzip", "short-row"])
def test_bad_file_fails_before_anything_is_merged(dagbag, green_month_loaded, bigquery, storage, month, message,
                                                  retried, quick_retries):
    """A truncated download is retried (a fresh one may be whole), a malformed file fails at once."""
    from include.zoomcamp.gcp.taxi_tasks import extract_verify_upload
    from include.zoomcamp.taxi.source import TaxiMonth

    before = _count(bigquery, "green_tripdata")
    with pytest.raises(Exception, match=message):
        extract_verify_upload(TaxiMonth("green", "2020", month), os.environ["AIRFLOW_VAR_TAXI_DATA_BASE_URL"],
                              BUCKET, config.GCP_CONN_ID)
    dag = quick_retries(dagbag.get_dag("08_gcp_taxi"))
    run = run_dag(dag, run_conf={"taxi": "green", "year": "2020", "month": month})
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["extract_and_upload"] == "failed" and states["merge_new_rows"] != "success"
    tries = run.get_task_instance("extract_and_upload").try_number
    assert tries == (1 + dag.get_task("extract_and_upload").retries if retried else 1)
    assert _count(bigquery, "green_tripdata") == before
    assert storage.bucket(BUCKET).get_blob(f"green_tripdata_2020-{month}.csv") is None


@pytest.mark.parametrize(("key", "value", "message"), [
    (config.GCP_BUCKET_NAME_VAR, "My_Bucket", "Invalid bucket name"),
    (config.GCP_BUCKET_NAME_VAR, "google-data", "must not start with 'goog' or contain 'google'"),
    (config.GCP_DATASET_VAR, "zoom-camp", "Invalid BigQuery dataset name"),
])
def test_kv_rejects_bad_names_and_stores_nothing(dagbag, key, value, message):
    from airflow.models.variable import Variable

    from include.zoomcamp.gcp import naming

    with pytest.raises(naming.InvalidGcpName, match=message):
        validators = {config.GCP_BUCKET_NAME_VAR: naming.validate_bucket,
                      config.GCP_DATASET_VAR: naming.validate_dataset}
        validators[key](value)
    before = Variable.get(key, default_var=None)
    run = run_dag(dagbag.get_dag("06_gcp_kv"), run_conf={key: value})
    assert run.state == "failed"
    assert Variable.get(key, default_var=None) == before


def test_kv_stores_the_four_values(dagbag):
    from airflow.models.variable import Variable

    values = {**config.GCP_DEFAULTS, config.GCP_DATASET_VAR: "zoomcamp_kv_test"}
    run = run_dag(dagbag.get_dag("06_gcp_kv"), run_conf=values)
    try:
        assert run.state == "success"
        assert {key: Variable.get(key) for key in values} == values
    finally:
        for key in values:
            Variable.delete(key)


@pytest.mark.parametrize(("taxi", "hour"), [("green", 9), ("yellow", 10)])
def test_scheduled_twins_map_logical_dates_to_files(dagbag, taxi, hour):
    from include.zoomcamp.taxi.source import TaxiMonth

    dates = logical_dates(dagbag.get_dag(f"09_gcp_taxi_scheduled_{taxi}"))
    assert len(dates) == 31 and all(d.hour == hour and d.day == 1 for d in dates)
    assert [TaxiMonth.from_logical_date(taxi, d).file_name for d in (dates[0], dates[-1])] == [
        f"{taxi}_tripdata_2019-01.csv", f"{taxi}_tripdata_2021-07.csv"]


@pytest.mark.parametrize(("schema", "hour"), [(GREEN, 9), (YELLOW, 10)], ids=["green", "yellow"])
def test_a_scheduled_twin_loads_the_month_of_its_logical_date(bigquery, storage, schema, hour, monkeypatch):
    """09's run of 2019-01-01 (as its backfill creates it) loads 2019-01, into a dataset of its own here."""
    import pendulum

    dataset = f"zoomcamp_09_{schema.taxi}"
    monkeypatch.setenv(f"AIRFLOW_VAR_{config.GCP_DATASET_VAR}", dataset)
    assert run_dag(fresh_dag("07_gcp_setup")).state == "success"
    dag = fresh_dag(f"09_gcp_taxi_scheduled_{schema.taxi}")
    run = run_dag(dag, logical_date=pendulum.datetime(2019, 1, 1, hour, tz="UTC"))
    assert run.state == "success"
    file_name = schema.file_name("2019", "01")
    rows = list(bigquery.query(f"SELECT filename, count(*) FROM `{PROJECT}.{dataset}.{schema.table}` GROUP BY 1")
                .result())
    assert [tuple(r) for r in rows] == [(file_name, ROWS)]
    bigquery.delete_dataset(f"{PROJECT}.{dataset}", delete_contents=True)
