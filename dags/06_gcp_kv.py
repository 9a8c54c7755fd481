"""06_gcp_kv — the course's GCP key/values as Airflow Variables (course flow 06).

Stores `GCP_PROJECT_ID`, `GCP_LOCATION`, `GCP_BUCKET_NAME` and `GCP_DATASET` from the trigger form,
each checked against GCP's naming rules.

Details: docs/course.md#06_gcp_kv
"""
from airflow.sdk import DAG, Param, Variable, task

from include.zoomcamp import config
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.gcp import key_values, naming

VALIDATORS = {
    config.GCP_PROJECT_ID_VAR: naming.validate_project,
    config.GCP_LOCATION_VAR: naming.validate_location,
    config.GCP_BUCKET_NAME_VAR: naming.validate_bucket,
    config.GCP_DATASET_VAR: naming.validate_dataset,
}

with DAG(
    dag_id="06_gcp_kv",
    schedule=None,
    params={key: Param(config.gcp_value(key), type="string", title=key) for key in config.GCP_DEFAULTS},
    default_args=RETRY_DEFAULT_ARGS,
    tags=[config.TAG],
    doc_md=__doc__,
):

    @task
    def store_key_values(params=None) -> dict:
        import os

        values = {key: validate(str(params[key]).strip()) for key, validate in VALIDATORS.items()}
        in_environment = key_values.values_in_environment(values, os.environ)
        for key, value in values.items():  # all validated before the first is stored
            if key in in_environment:
                print(f"{key} = {value!r}: already set in Airflow's environment, not stored")
            else:
                Variable.set(key, value)
        return values

    store_key_values()
