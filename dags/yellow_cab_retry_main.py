"""yellow_cab_retry_main — each yellow-cab CSV under gs://<bucket>/yc-retry/data/ cleaned by a subflow,
then archived or rolled back (walkthrough 3_4, retry & rollback, Kestra namespace gcp.yellowcab).

Per file, in a mapped task group (Kestra's ForEach; FILES_AT_ONCE at once):

    load_staging >> run_subflow >> archive                    (success: to <prefix>archive/)
                    run_subflow >> rollback >> move_to_errors (one_failed: rows out, to <prefix>errors/)
                    run_subflow >> drop_staging               (all_done: staging table dropped in every case)

A file that ends in errors/ leaves the run failed; the other files go on.
Details: docs/walkthrough.md#retry--rollback-3_4
"""
from airflow.providers.google.cloud.operators.bigquery import BigQueryDeleteTableOperator
from airflow.providers.google.cloud.transfers.gcs_to_gcs import GCSToGCSOperator
from airflow.sdk import DAG, Param, TriggerRule, get_current_context, task, task_group

from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.operators import run_and_wait
from include.zoomcamp.walkthrough import YELLOW_CAB_TAGS
from include.zoomcamp.walkthrough.yellow_cab_retry import cleaning, files, tables

FILES_AT_ONCE = 3
OBJECT_LABEL = "{{ task.source_object }}"  # names a mapped GCS move in the UI


def _label(object_name: str) -> None:
    get_current_context()["object_name"] = object_name  # names the mapped instance in the UI


with DAG(
    dag_id=files.MAIN_DAG_ID,
    schedule=None,
    max_active_runs=1,  # one run moves a file at a time
    params={"prefix": Param(files.PREFIX, type="string", pattern=r"^[^/].*/$",
                            description="Folder holding data/, archive/ and errors/")},
    default_args=GCP_DEFAULT_ARGS,
    tags=YELLOW_CAB_TAGS,
    doc_md=__doc__,
):
    create_dataset, create_tables = tables.create_tables_tasks(templates.PROJECT_ID, templates.LOCATION)

    @task
    def list_files(bucket: str, project: str, params=None) -> list[dict]:
        plans = files.list_files(bucket, project, params["prefix"])
        print(f"{len(plans)} CSV file(s) under gs://{bucket}/{params['prefix']}{files.DATA}: "
              f"{[p['object_name'] for p in plans]}")
        return plans

    @task_group
    def process_file(object_name, generation, source_uri, staging_table, staging_table_id, archive_object,
                     error_object):
        @task(map_index_template="{{ object_name }}", max_active_tis_per_dagrun=FILES_AT_ONCE)
        def load_staging(bucket: str, project: str, object_name: str, generation: int, staging_table: str) -> int:
            _label(object_name)
            return files.load_staging(bucket, object_name, generation, staging_table, project=project)

        run_subflow = run_and_wait(
            task_id="run_subflow", trigger_dag_id=cleaning.SUBFLOW_DAG_ID,
            conf={"staging_table": staging_table, "source_uri": source_uri, "source_generation": generation},
            max_active_tis_per_dagrun=FILES_AT_ONCE,
            map_index_template="{{ task.conf['source_uri'] }}",
        )
        archive = GCSToGCSOperator(
            task_id="archive", source_bucket=templates.BUCKET, source_object=object_name,
            destination_bucket=templates.BUCKET, destination_object=archive_object, move_object=True,
            exact_match=True, map_index_template=OBJECT_LABEL,
        )

        @task(trigger_rule=TriggerRule.ONE_FAILED, map_index_template="{{ object_name }}")
        def rollback(project: str, object_name: str, source_uri: str, generation: int) -> dict:
            _label(object_name)
            return cleaning.rollback(source_uri, generation, project=project)

        move_to_errors = GCSToGCSOperator(
            task_id="move_to_errors", source_bucket=templates.BUCKET, source_object=object_name,
            destination_bucket=templates.BUCKET, destination_object=error_object, move_object=True,
            exact_match=True, map_index_template=OBJECT_LABEL,
        )
        drop_staging = BigQueryDeleteTableOperator(
            task_id="drop_staging", deletion_dataset_table=staging_table_id, ignore_if_missing=True,
            trigger_rule=TriggerRule.ALL_DONE, map_index_template="{{ task.deletion_dataset_table }}",
        )

        staged = load_staging(templates.BUCKET, templates.PROJECT_ID, object_name, generation, staging_table)
        staged >> run_subflow >> archive
        run_subflow >> rollback(templates.PROJECT_ID, object_name, source_uri, generation) >> move_to_errors
        run_subflow >> drop_staging

    plans = list_files(templates.BUCKET, templates.PROJECT_ID)
    create_tables >> plans
    process_file.expand_kwargs(plans)
