"""04_postgres_taxi — load one month of NYC taxi data into Postgres (course flow 04).

Pick taxi, year and month in the trigger form (year also accepts a typed value such as 2021).
The month's CSV is downloaded from `<taxi_data_base_url>/<taxi>/<taxi>_tripdata_<yyyy>-<mm>.csv.gz`,
verified (complete gzip, expected header, every row the right width) and merged into
`public.<taxi>_tripdata` so that only new `unique_row_id`s are inserted: reruns add nothing and a
failed or killed run leaves the table as it was. Connection: `ny_taxi`.
"""
from airflow.sdk import DAG

from include.zoomcamp import config
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.taxi.params import taxi_month_params
from include.zoomcamp.taxi.postgres_tasks import postgres_taxi_tasks

with DAG(
    dag_id="04_postgres_taxi",
    schedule=None,
    params=taxi_month_params(default_taxi="yellow"),
    default_args=RETRY_DEFAULT_ARGS,
    tags=[config.TAG],
    doc_md=__doc__,
):
    postgres_taxi_tasks()
