"""08_gcp_taxi — ELT of one taxi month into BigQuery through GCS (course flow 08).

Params as 04 (default taxi green; any four-digit year may be typed). The month's CSV is
downloaded, verified (complete gzip, expected header, every row the right width — so the course's
"column position 17" trap fails here, before anything is merged) and uploaded to
`gs://<GCP_BUCKET_NAME>/<taxi>_tripdata_<yyyy>-<mm>.csv`. The final table
`<project>.<dataset>.<taxi>_tripdata` (partitioned by DATE(pickup)) is created if absent; the CSV
is loaded into `<taxi>_tripdata_<yyyy>_<mm>_ext`, the monthly table adds `unique_row_id`
(MD5 over the course's five fields) and `filename`, and a MERGE inserts only new ids while
reading only the partitions of the month's pickup dates. Connection: `google_cloud_default`.
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
