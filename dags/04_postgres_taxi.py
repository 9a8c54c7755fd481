"""04_postgres_taxi — load one month of NYC taxi data into Postgres (course flow 04).

Taxi, year and month from the trigger form; the month's CSV is verified and merged into
`public.<taxi>_tripdata` by `unique_row_id`: reruns add nothing, a failed run leaves the table as it was.

Details: docs/course.md#flow-04-in-detail
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
