"""06_gcp_kv — the course's GCP key/values as Airflow Variables (course flow 06).

Stores `GCP_PROJECT_ID`, `GCP_LOCATION`, `GCP_BUCKET_NAME` and `GCP_DATASET` from the trigger
form, after checking each against GCP's naming rules (a clear error names the rule broken; the
task fails at once, while a failure to store is retried).
The defaults fit the local emulators. The service-account key is never a Variable: it belongs in
the `google_cloud_default` connection or a secrets backend (the course's `GCP_CREDS` secret).
"""
from airflow.sdk import DAG, Param, Variable, task

from include.zoomcamp import config
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.gcp import naming

VALIDATORS = {
    config.GCP_PROJECT_ID_VAR: naming.validate_project,
    config.GCP_LOCATION_VAR: naming.validate_location,
    config.GCP_BUCKET_NAME_VAR: naming.validate_bucket,
    config.GCP_DATASET_VAR: naming.validate_dataset,
}

with DAG(
    dag_id="06_gcp_kv",
    schedule=None,
    params={key: Param(default, type="string", title=key) for key, default in config.GCP_DEFAULTS.items()},
    default_args=RETRY_DEFAULT_ARGS,
    tags=[config.TAG],
    doc_md=__doc__,
):

    @task
    def store_key_values(params=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        try:
            values = {key: validate(str(params[key]).strip()) for key, validate in VALIDATORS.items()}
        except naming.InvalidGcpName as exc:
            raise AirflowFailException(str(exc)) from None  # a retry would store nothing either
        for key, value in values.items():  # all validated before the first is stored
            Variable.set(key, value)
        return values

    store_key_values()
