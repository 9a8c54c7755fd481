"""08_gcp_taxi — ELT of one taxi month into BigQuery through GCS (course flow 08).

The month's CSV, verified, to GCS; loaded, given `unique_row_id` and `filename`, and merged into the
partitioned `<taxi>_tripdata`, reading only the partitions of the month's pickup dates.

Details: docs/course.md#08_gcp_taxi
"""
from airflow.sdk import DAG

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp.taxi_tasks import gcp_taxi_tasks
from include.zoomcamp.taxi.params import taxi_month_params

with DAG(
    dag_id="08_gcp_taxi",
    schedule=None,
    params=taxi_month_params(default_taxi="green"),
    default_args=GCP_DEFAULT_ARGS,
    render_template_as_native_obj=True,
    tags=[config.TAG],
    doc_md=__doc__,
):
    gcp_taxi_tasks()
