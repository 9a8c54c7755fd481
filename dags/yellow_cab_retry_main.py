"""yellow_cab_retry_main and yellow_cab_retry_subflow — walkthrough 3_4, retry & rollback
(Kestra namespace gcp.yellowcab, dataset `yc_retry`).

`yellow_cab_retry_main` lists the CSV files under gs://<bucket>/yc-retry/data/ (param `prefix`,
default `yc-retry/`) and processes each in its own instance of the mapped task group `process_file`
(Kestra's ForEach; at most FILES_AT_ONCE files at once):

    load_staging >> run_subflow >> archive                    (success: to <prefix>archive/)
                    run_subflow >> rollback >> move_to_errors (one_failed: rows out, to <prefix>errors/)
                    run_subflow >> drop_staging               (all_done: staging table dropped in every case)

`run_subflow` triggers `yellow_cab_retry_subflow` with the file's staging table in its conf and
waits for it (deferred to the triggerer); a failed child run fails it at once (no second child run).
Trigger rules replace Kestra's `allowFailure`/`errors`: each file's instances depend only on the same
file's upstream instances, so one file's failure never stops the others.

`yellow_cab_retry_subflow` (conf: staging_table, source_uri, source_generation) creates the dataset
and tables when missing, then `strict_insert` (CAST, all rows or none) into `trips_clean`; only when
that fails, `safe_cast_insert` (trigger rule one_failed): SAFE_CAST, the rows whose required fields
do not survive into `trips_rejected`; `cleaning_result` (one_success) ends the run: it succeeds when
either insert did, and is upstream_failed — the run failed — only when both failed.

Run states: a file that ends in errors/ leaves the main run **failed** (its `archive` instance, a
leaf, is upstream_failed), while its rollback and move succeeded and the other files are archived;
a run where every file was archived (directly or through the fallback) succeeds, and so does a run
with nothing to do. See docs/walkthrough.md (3_4) for why.

Network tasks retry with exponential backoff (GCP_DEFAULT_ARGS: 3 retries, 20 s doubling, at most
5 min); a file that cannot be cleaned fails at once. Variables `GCP_PROJECT_ID`, `GCP_BUCKET_NAME`,
`GCP_LOCATION` (defaults: the local emulators); connection `google_cloud_default`.
"""
from airflow.providers.google.cloud.operators.bigquery import BigQueryDeleteTableOperator
from airflow.providers.google.cloud.transfers.gcs_to_gcs import GCSToGCSOperator
from airflow.sdk import DAG, Param, TriggerRule, get_current_context, task, task_group

from include.zoomcamp import config
from include.zoomcamp.defaults import GCP_DEFAULT_ARGS
from include.zoomcamp.gcp import templates
from include.zoomcamp.walkthrough import subflows
from include.zoomcamp.walkthrough import yellow_cab_retry as retry

MAIN_DAG_ID = retry.MAIN_DAG_ID
SUBFLOW_DAG_ID = "yellow_cab_retry_subflow"
TAGS = [config.WALKTHROUGH_TAG, config.YELLOW_CAB_TAG]
FILES_AT_ONCE = 3
OBJECT_LABEL = "{{ task.source_object }}"  # names a mapped GCS move in the UI


def _label(object_name: str) -> None:
    get_current_context()["object_name"] = object_name  # names the mapped instance in the UI


def _fail_on_file_error(call, *args, **kwargs):
    """A file that cannot be cleaned fails the task at once; other errors (network) are retried."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return call(*args, **kwargs)
    except retry.RetryFileError as exc:
        raise AirflowFailException(str(exc)) from None


with DAG(
    dag_id=SUBFLOW_DAG_ID,
    schedule=None,
    params={
        "staging_table": Param("", type="string", description="Staging table in yc_retry (set by the main DAG)"),
        "source_uri": Param("", type="string", description="gs://bucket/object the staging table holds"),
        "source_generation": Param(0, type="integer", description="That object's GCS generation"),
    },
    default_args=GCP_DEFAULT_ARGS,
    tags=TAGS,
    doc_md=__doc__,
):
    create_dataset, create_tables = retry.create_tables_tasks(templates.PROJECT_ID, templates.LOCATION)

    @task
    def strict_insert(project: str, params=None) -> dict:
        return _fail_on_file_error(retry.strict_insert, *retry.subflow_conf(params), project=project)

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def safe_cast_insert(project: str, params=None) -> dict:
        return _fail_on_file_error(retry.safe_cast_insert, *retry.subflow_conf(params), project=project)

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


with DAG(
    dag_id=MAIN_DAG_ID,
    schedule=None,
    max_active_runs=1,  # one run moves a file at a time
    params={"prefix": Param(retry.PREFIX, type="string", pattern=r"^[^/].*/$",
                            description="Folder holding data/, archive/ and errors/")},
    default_args=GCP_DEFAULT_ARGS,
    tags=TAGS,
    doc_md=__doc__,
):
    create_dataset, create_tables = retry.create_tables_tasks(templates.PROJECT_ID, templates.LOCATION)

    @task
    def list_files(bucket: str, project: str, params=None) -> list[dict]:
        files = retry.list_files(bucket, project, params["prefix"])
        print(f"{len(files)} CSV file(s) under gs://{bucket}/{params['prefix']}{retry.DATA}: "
              f"{[f['object_name'] for f in files]}")
        return files

    @task_group
    def process_file(object_name, generation, source_uri, staging_table, staging_table_id, archive_object,
                     error_object):
        @task(map_index_template="{{ object_name }}", max_active_tis_per_dagrun=FILES_AT_ONCE)
        def load_staging(bucket: str, project: str, object_name: str, generation: int, staging_table: str) -> int:
            _label(object_name)
            return _fail_on_file_error(retry.load_staging, bucket, object_name, generation, staging_table,
                                       project=project)

        run_subflow = subflows.run_and_wait(
            task_id="run_subflow", trigger_dag_id=SUBFLOW_DAG_ID,
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
            return retry.rollback(source_uri, generation, project=project)

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

    files = list_files(templates.BUCKET, templates.PROJECT_ID)
    create_tables >> files
    process_file.expand_kwargs(files)
