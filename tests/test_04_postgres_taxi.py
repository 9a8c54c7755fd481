"""Flow 04 end to end on the embedded Postgres, from generated files served over loopback HTTP."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time

import pytest

from include.zoomcamp.taxi.schemas import GREEN, YELLOW
from include.zoomcamp.taxi.source import TaxiMonth
from tests.conftest import REPO_ROOT, run_dag
from tests.fixtures.course_sql import course_load
from tests.fixtures.taxi import FileServer, downloaded_gz, forget_file, taxi_csv_lines, write_taxi_gz

ROWS = 3000


@pytest.fixture(scope="module")
def taxi_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    for taxi in ("yellow", "green"):
        for month in (1, 2, 3, 4):
            write_taxi_gz(root, taxi, 2019, month, ROWS)
    write_taxi_gz(root, "green", 2020, 6, ROWS)  # cut short on its first download (truncate_next)
    # Broken files, each a way the real download goes wrong.
    good = write_taxi_gz(root, "yellow", 2020, 1, ROWS).read_bytes()
    (root / "yellow" / "yellow_tripdata_2020-01.csv.gz").write_bytes(good[: len(good) // 2])  # truncated
    lines = list(taxi_csv_lines("yellow", 2020, 2, 100))
    _write_lines(root / "yellow" / "yellow_tripdata_2020-02.csv.gz", ["vendor_id" + lines[0][8:]] + lines[1:])
    lines = list(taxi_csv_lines("yellow", 2020, 3, 100))
    lines[57] = ",".join(lines[57].split(",")[:14])  # the course's "only 14 columns" row
    _write_lines(root / "yellow" / "yellow_tripdata_2020-03.csv.gz", lines)
    with FileServer(root) as server:
        yield server


def _write_lines(path, lines):
    with gzip.open(path, "wt") as out:
        out.write("\n".join(lines) + "\n")


@pytest.fixture(scope="module", autouse=True)
def final_tables(pg_uri):
    import psycopg

    from include.zoomcamp.taxi.postgres import ensure_tables

    with psycopg.connect(pg_uri, autocommit=True) as conn:
        for schema in (YELLOW, GREEN):
            ensure_tables(conn, schema)


@pytest.fixture(autouse=True)
def base_url(taxi_site, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_DATA_BASE_URL", taxi_site.url)
    return taxi_site.url


def _count(pg, table, file_name=None):
    if file_name is None:
        return pg.execute(f"SELECT count(*) FROM public.{table}").fetchone()[0]
    return pg.execute(f"SELECT count(*) FROM public.{table} WHERE filename = %s", (file_name,)).fetchone()[0]


def _load_report(run):
    ti = next(ti for ti in run.get_task_instances() if ti.task_id == "extract_and_load")
    return ti.xcom_pull(task_ids="extract_and_load")


@pytest.mark.parametrize("schema", [YELLOW, GREEN], ids=["yellow", "green"])
def test_loads_a_month_and_a_rerun_adds_nothing(dagbag, pg, schema):
    dag = dagbag.get_dag("04_postgres_taxi")
    conf = {"taxi": schema.taxi, "year": "2019", "month": "01"}
    file_name = schema.file_name("2019", "01")
    forget_file(pg, schema.table, file_name)

    run = run_dag(dag, run_conf=conf)
    assert run.state == "success"
    report = _load_report(run)
    assert report["file"] == file_name
    assert report["rows_in_file"] == ROWS
    assert report["rows_inserted"] == ROWS
    csv_bytes = len(("\n".join(taxi_csv_lines(schema.taxi, 2019, 1, ROWS)) + "\n").encode())
    assert report["uncompressed_bytes"] == csv_bytes
    labels = next(ti for ti in run.get_task_instances() if ti.task_id == "set_labels").xcom_pull(task_ids="set_labels")
    assert labels == {"file": file_name, "taxi": schema.taxi}
    assert _count(pg, schema.table, file_name) == ROWS
    columns = [r[0] for r in pg.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema='public' AND table_name=%s "
        "ORDER BY ordinal_position", (schema.table,))]
    assert columns == ["unique_row_id", "filename"] + [n.lower() for n in schema.column_names]

    rerun = run_dag(dag, run_conf=conf)
    assert rerun.state == "success"
    assert _load_report(rerun)["rows_inserted"] == 0
    assert _count(pg, schema.table, file_name) == ROWS

    # Rows deleted by hand are restored by the next run (the rerun shortcut checks the table).
    pg.execute(f"DELETE FROM public.{schema.table} WHERE ctid IN "
               f"(SELECT ctid FROM public.{schema.table} WHERE filename = %s LIMIT 10)", (file_name,))
    again = run_dag(dag, run_conf=conf)
    assert _load_report(again)["rows_inserted"] == 10
    assert _count(pg, schema.table, file_name) == ROWS


def _course_sql_load(pg, schema, file_name, csv_text, target_schema):
    course_load(pg, schema, file_name, [csv_text.encode()], target_schema)


@pytest.mark.parametrize("schema", [YELLOW, GREEN], ids=["yellow", "green"])
def test_switching_from_the_kestra_flow_gives_no_duplicates_and_no_missing_rows(dagbag, pg, schema):
    """Month 02 loaded by the course's SQL, then 02 and 03 by this DAG: same ids, nothing twice."""
    feb = schema.file_name("2019", "02")
    csv_feb = "\n".join(taxi_csv_lines(schema.taxi, 2019, 2, ROWS)) + "\n"
    _course_sql_load(pg, schema, feb, csv_feb, "public")
    kestra_ids = {r[0] for r in pg.execute(
        f"SELECT unique_row_id FROM public.{schema.table} WHERE filename = %s", (feb,))}
    _course_sql_load(pg, schema, feb, csv_feb, "kestra_reference")

    dag = dagbag.get_dag("04_postgres_taxi")
    run = run_dag(dag, run_conf={"taxi": schema.taxi, "year": "2019", "month": "02"})
    assert run.state == "success"
    assert _load_report(run)["rows_inserted"] == 0
    assert _count(pg, schema.table, feb) == ROWS

    mar = schema.file_name("2019", "03")
    run = run_dag(dag, run_conf={"taxi": schema.taxi, "year": "2019", "month": "03"})
    assert _load_report(run)["rows_inserted"] == ROWS
    csv_mar = "\n".join(taxi_csv_lines(schema.taxi, 2019, 3, ROWS)) + "\n"
    _course_sql_load(pg, schema, mar, csv_mar, "kestra_reference")
    ours = {r[0] for r in pg.execute(f"SELECT unique_row_id FROM public.{schema.table} WHERE filename = %s", (mar,))}
    theirs = {r[0] for r in pg.execute(
        f"SELECT unique_row_id FROM kestra_reference.{schema.table} WHERE filename = %s", (mar,))}
    assert ours == theirs and len(ours) > 0
    assert kestra_ids and kestra_ids.isdisjoint(ours)


def test_rows_shared_between_files_and_stray_pickups_are_merged_as_the_course_does(pg, pg_uri, tmp_path):
    """Real files hold rows picked up in other months (or with no pickup) and rows repeated within a
    file; the loader compares only with rows on the file's pickup days, so check it against the
    course's MERGE over the whole table, row for row."""
    import psycopg

    from include.zoomcamp.taxi.postgres import load_month

    header, *jan = taxi_csv_lines("yellow", 2018, 1, 200, seed=7)
    feb = list(taxi_csv_lines("yellow", 2018, 2, 200, seed=7))[1:]
    stray = jan[0].split(",")
    stray[1], stray[2] = "2017-06-15 10:00:00", "2017-06-15 10:20:00"
    no_pickup = jan[1].split(",")
    no_pickup[1] = ""
    jan += [",".join(stray), ",".join(no_pickup)]
    # February's file repeats an in-month January row, the stray and the row without pickup
    # (the course skips all three), and holds one of its own rows twice (the course keeps both).
    feb += [jan[5], jan[-2], jan[-1], feb[3]]
    files = {"yellow_tripdata_2018-01.csv": jan, "yellow_tripdata_2018-02.csv": feb}

    reports = {}
    for name, rows in files.items():
        text = "\n".join([header, *rows]) + "\n"
        with psycopg.connect(pg_uri) as conn:
            reports[name] = load_month(conn, YELLOW, name, downloaded_gz(tmp_path, name, text), tmp_path)
        course_load(pg, YELLOW, name, [text.encode()], "course_reference")
    assert reports["yellow_tripdata_2018-01.csv"].rows_inserted == 202
    assert reports["yellow_tripdata_2018-02.csv"].rows_inserted == 201

    def ids(schema_name):
        return sorted(pg.execute(
            f"SELECT filename, unique_row_id, count(*) FROM {schema_name}.yellow_tripdata "
            "WHERE filename = ANY(%s) GROUP BY 1, 2", (list(files),)).fetchall())
    assert ids("public") == ids("course_reference")
    indexes = {r[0] for r in pg.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'yellow_tripdata' "
                                         "AND schemaname = 'public'")}
    assert indexes and all("USING brin" in d for d in indexes), indexes


def test_two_loads_at_once_of_different_and_same_months(pg, base_url):
    """Parallel runs (other month, and the same month twice) on a fresh database end with each row once."""
    from include.zoomcamp.config import POSTGRES_CONN_ID

    pg.execute("DROP TABLE IF EXISTS public.green_tripdata, public.yellow_tripdata, public.zoomcamp_loads")
    from include.zoomcamp.taxi.postgres_tasks import load_taxi_month

    months = [TaxiMonth("green", "2019", "04"), TaxiMonth("yellow", "2019", "04"), TaxiMonth("yellow", "2019", "04")]
    errors, reports = [], []

    def load(month):
        try:
            reports.append(load_taxi_month(month, POSTGRES_CONN_ID, base_url))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(m,)) for m in months]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _count(pg, "green_tripdata", "green_tripdata_2019-04.csv") == ROWS
    assert _count(pg, "yellow_tripdata", "yellow_tripdata_2019-04.csv") == ROWS
    yellow = sorted(r["rows_inserted"] for r in reports if r["table"] == "yellow_tripdata")
    assert yellow == [0, ROWS]


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("02", "unexpected header"),
        ("03", "line 58: 14 fields where 18 are expected"),
        ("11", "answered HTTP 404"),
    ],
    ids=["wrong-header", "short-row", "not-published"],
)
def test_a_bad_file_fails_at_once_naming_the_problem_and_leaves_the_table(dagbag, pg, base_url, month, message,
                                                                          quick_retries):
    """No retry can fix these: the task fails on its first try, although it has retries."""
    from include.zoomcamp.config import POSTGRES_CONN_ID
    from include.zoomcamp.taxi.postgres_tasks import load_taxi_month

    before = _count(pg, "yellow_tripdata")
    with pytest.raises(Exception, match=message) as raised:
        load_taxi_month(TaxiMonth("yellow", "2020", month), POSTGRES_CONN_ID, base_url)
    if month == "11":
        assert f"{base_url}/yellow/yellow_tripdata_2020-11.csv.gz" in str(raised.value)

    dag = quick_retries(dagbag.get_dag("04_postgres_taxi"))
    run = run_dag(dag, run_conf={"taxi": "yellow", "year": "2020", "month": month})
    load = run.get_task_instance("extract_and_load")
    assert (run.state, load.state, load.try_number) == ("failed", "failed", 1)
    assert dag.get_task("extract_and_load").retries >= 2
    assert _count(pg, "yellow_tripdata") == before
    assert _count(pg, "yellow_tripdata", f"yellow_tripdata_2020-{month}.csv") == 0


def test_a_truncated_download_is_retried_and_the_next_try_loads_the_month(dagbag, pg, taxi_site, quick_retries):
    dag = quick_retries(dagbag.get_dag("04_postgres_taxi"))
    taxi_site.truncate_next("/green/green_tripdata_2020-06.csv.gz")
    run = run_dag(dag, run_conf={"taxi": "green", "year": "2020", "month": "06"})
    load = run.get_task_instance("extract_and_load")
    assert (run.state, load.try_number) == ("success", 2)
    assert _count(pg, "green_tripdata", "green_tripdata_2020-06.csv") == ROWS


def test_a_file_truncated_at_the_source_fails_after_every_retry(dagbag, pg, quick_retries):
    dag = quick_retries(dagbag.get_dag("04_postgres_taxi"))
    before = _count(pg, "yellow_tripdata")
    run = run_dag(dag, run_conf={"taxi": "yellow", "year": "2020", "month": "01"})
    load = run.get_task_instance("extract_and_load")
    assert (run.state, load.state) == ("failed", "failed")
    assert load.try_number == 1 + dag.get_task("extract_and_load").retries
    assert _count(pg, "yellow_tripdata") == before


@pytest.mark.parametrize(
    "conf",
    [{"taxi": "purple", "year": "2019", "month": "01"},
     {"taxi": "yellow", "year": "2019", "month": "13"},
     {"taxi": "yellow", "year": "2019'; DROP TABLE yellow_tripdata; --", "month": "01"},
     {"taxi": "yellow", "year": "2019\n", "month": "01"},
     {"taxi": "yellow", "year": "\u0662\u0660\u0661\u0669", "month": "01"},  # Arabic-Indic digits
     {"taxi": "yellow", "year": "\uff12\uff10\uff11\uff19", "month": "01"}],  # full-width digits
    ids=["taxi-purple", "month-13", "sql-in-year", "year-newline", "year-arabic-indic-digits",
         "year-full-width-digits"],
)
def test_invalid_params_are_rejected_before_any_work(dagbag, pg, conf):
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.get_dag("04_postgres_taxi")
    before = _count(pg, "yellow_tripdata")
    with pytest.raises(ParamValidationError):
        run_dag(dag, run_conf=conf)
    assert _count(pg, "yellow_tripdata") == before


def test_a_run_killed_mid_load_leaves_the_table_as_it_was(pg, tmp_path, base_url):
    """SIGKILL the loader while its COPY streams into the final table: the month's rows vanish with it."""
    text = "\n".join(taxi_csv_lines("green", 2019, 5, 100_000)) + "\n"
    downloaded = downloaded_gz(tmp_path, "green_tripdata_2019-05.csv", text)
    before = _count(pg, "green_tripdata")
    script = (
        "import os, pickle, sys, time\n"
        "import psycopg\n"
        "from include.zoomcamp.taxi import postgres\n"
        "from include.zoomcamp.taxi.schemas import GREEN\n"
        "write = psycopg.Copy.write\n"
        "calls = []\n"
        "def slow_write(self, data):\n"  # pause mid-stream, once some rows are in
        "    write(self, data)\n"
        "    calls.append(1)\n"
        "    if len(calls) == 3:\n"
        "        print('copying', flush=True); time.sleep(60)\n"
        "psycopg.Copy.write = slow_write\n"
        "downloaded = pickle.loads(bytes.fromhex(sys.argv[1]))\n"
        "postgres.load_month(psycopg.connect(os.environ['URI']), GREEN, 'green_tripdata_2019-05.csv', downloaded,\n"
        "                    downloaded.path.parent)\n"
    )
    import pickle

    uri = f"postgresql://root:root@127.0.0.1:{os.environ['ZOOMCAMP_PG_PORT']}/ny_taxi"
    proc = subprocess.Popen([sys.executable, "-c", script, pickle.dumps(downloaded).hex()], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "URI": uri, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.stdout.readline().strip() == "copying"
    copying_into = pg.execute("SELECT query FROM pg_stat_activity WHERE query LIKE 'COPY %%' "
                              "AND pid <> pg_backend_pid()").fetchall()
    assert any('"public"."green_tripdata"' in q for (q,) in copying_into), copying_into
    proc.kill()
    proc.wait()
    # The server notices the dead client and rolls its transaction back.
    for _ in range(100):
        active = pg.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %%' "
                            "AND pid <> pg_backend_pid()").fetchone()[0]
        if active == 0:
            break
        time.sleep(0.1)
    assert active == 0
    assert _count(pg, "green_tripdata") == before
    assert _count(pg, "green_tripdata", "green_tripdata_2019-05.csv") == 0


def test_the_release_site_variable_set_as_in_the_ui_takes_effect(dagbag, pg, taxi_site, monkeypatch):
    """`taxi_data_base_url` stored in the metadata database (Admin > Variables) is the one used:
    nothing in the environment `make run` writes hides it."""
    from airflow.models.variable import Variable

    from devstack.__main__ import PORTS
    from devstack.settings import airflow_environment

    monkeypatch.delenv("AIRFLOW_VAR_TAXI_DATA_BASE_URL")
    env = airflow_environment(REPO_ROOT, {key: port for key, _, port in PORTS}, "postgresql+psycopg://u:p@h/airflow")
    assert not [name for name in env if name.startswith("AIRFLOW_VAR_")]
    Variable.set("taxi_data_base_url", taxi_site.url)  # a row of the metadata database, as the UI writes it
    pg.execute("DELETE FROM public.green_tripdata WHERE filename = 'green_tripdata_2019-02.csv'")
    try:
        conf = {"taxi": "green", "year": "2019", "month": "02"}
        run = run_dag(dagbag.get_dag("04_postgres_taxi"), run_conf=conf)
    finally:
        Variable.delete("taxi_data_base_url")
    assert run.state == "success"  # the default site is out of reach here: the stored Variable was used
    assert _load_report(run)["rows_inserted"] == ROWS
