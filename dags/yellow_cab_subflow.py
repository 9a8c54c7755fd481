"""yellow_cab_subflow — the trip-quality tables of walkthrough 3_3, built from `YellowCab.raw_data`
(Kestra namespace gcp.yellowcab).

Loads the zone lookup, builds `trips_enriched`, then in parallel the detections and aggregations, then
`trips_curated`; every table is rebuilt on each run (rules: include/zoomcamp/walkthrough/yellow_cab/quality.py).
Triggered by `yellow_cab_main`.
Details: docs/walkthrough.md#yellow_cab_main-and-yellow_cab_subflow-3_3
"""
from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator
from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator
from airflow.sdk import DAG

from include.zoomcamp import config, errors
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.gcp.bigquery import query_job
from include.zoomcamp.gcp.errors import GcpRetryPolicy
from include.zoomcamp.walkthrough import YELLOW_CAB_TAGS, samples
from include.zoomcamp.walkthrough.yellow_cab import quality

ZONES_OBJECT = samples.ZONES_OBJECT
DATASET = config.YELLOW_CAB_DATASET

with DAG(
    dag_id=quality.SUBFLOW_DAG_ID,
    schedule=None,
    max_active_runs=1,  # two runs would replace the same tables at once
    default_args={**GCP_DEFAULT_ARGS,
                  "retry_policy": GcpRetryPolicy(then=errors.retry_policy(quality.BIGQUERY_REFUSED))},
    tags=YELLOW_CAB_TAGS,
    doc_md=__doc__,
):
    load_zone_lookup = GCSToBigQueryOperator(
        task_id="load_zone_lookup",
        bucket=templates.BUCKET, source_objects=[ZONES_OBJECT],
        destination_project_dataset_table=f"{templates.PROJECT_ID}.{DATASET}.{quality.ZONES_TABLE}",
        schema_fields=list(quality.ZONE_SCHEMA), source_format="CSV", skip_leading_rows=1, max_bad_records=0,
        write_disposition="WRITE_TRUNCATE", create_disposition="CREATE_IF_NEEDED", autodetect=False,
        project_id=templates.PROJECT_ID,
    )
    trips_enriched = BigQueryInsertJobOperator(
        task_id=quality.ENRICHED_TABLE,
        configuration=query_job(quality.enriched_sql(templates.PROJECT_ID)),
        project_id=templates.PROJECT_ID,
    )
    detections = [
        BigQueryInsertJobOperator(
            task_id=name, configuration=query_job(quality.detection_sql(name, templates.PROJECT_ID)),
            project_id=templates.PROJECT_ID,
        )
        for name in quality.DETECTIONS
    ]
    aggregations = [
        BigQueryInsertJobOperator(
            task_id=name, configuration=query_job(quality.aggregation_sql(name, templates.PROJECT_ID)),
            project_id=templates.PROJECT_ID,
        )
        for name in quality.AGGREGATIONS
    ]
    trips_curated = BigQueryInsertJobOperator(
        task_id=quality.CURATED_TABLE,
        configuration=query_job(quality.curated_sql(templates.PROJECT_ID)),
        project_id=templates.PROJECT_ID,
    )

    load_zone_lookup >> trips_enriched >> [*detections, *aggregations] >> trips_curated

