"""yellow_cab_retry_subflow — cleans one staged yellow-cab CSV into `yc_retry.trips_clean` (walkthrough 3_4,
retry & rollback, Kestra namespace gcp.yellowcab).

`strict_insert` (CAST, all rows or none); only when it fails, `safe_cast_insert` (SAFE_CAST, unusable rows
to `trips_rejected`); the run fails only when both fail. Triggered by `yellow_cab_retry_main`, one run per
file, with the file's staging table in its conf.
Details: docs/walkthrough.md#retry--rollback-3_4
"""
from airflow.sdk import DAG, Param, TriggerRule, task

from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.walkthrough import YELLOW_CAB_TAGS
from include.zoomcamp.walkthrough.yellow_cab_retry import cleaning, tables

with DAG(
    dag_id=cleaning.SUBFLOW_DAG_ID,
    schedule=None,
    params={
        "staging_table": Param("", type="string", description="Staging table in yc_retry (set by the main DAG)"),
        "source_uri": Param("", type="string", description="gs://bucket/object the staging table holds"),
        "source_generation": Param(0, type="integer", description="That object's GCS generation"),
    },
    default_args=GCP_DEFAULT_ARGS,
    tags=YELLOW_CAB_TAGS,
    doc_md=__doc__,
):
    create_dataset, create_tables = tables.create_tables_tasks(templates.PROJECT_ID, templates.LOCATION)

    @task
    def strict_insert(project: str, params=None) -> dict:
        return cleaning.strict_insert(*cleaning.subflow_conf(params), project=project)

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def safe_cast_insert(project: str, params=None) -> dict:
        return cleaning.safe_cast_insert(*cleaning.subflow_conf(params), project=project)

    @task(trigger_rule=TriggerRule.ONE_SUCCESS)
    def cleaning_result(ti=None) -> dict:
        result = (ti.xcom_pull(task_ids="strict_insert", default=None)
                  or ti.xcom_pull(task_ids="safe_cast_insert", default=None))
        print(f"Cleaned: {result}")
        return result

    strict = strict_insert(templates.PROJECT_ID)
    fallback = safe_cast_insert(templates.PROJECT_ID)
    create_tables >> strict >> fallback
    [strict, fallback] >> cleaning_result()

