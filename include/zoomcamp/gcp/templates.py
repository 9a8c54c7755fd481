"""Jinja expressions for the course's GCP key/values, read at run time (never at parse time)."""
from include.zoomcamp import config, templates


def variable(key: str) -> str:
    return templates.variable(key, config.GCP_DEFAULTS[key])


PROJECT_ID = variable(config.GCP_PROJECT_ID_VAR)
LOCATION = variable(config.GCP_LOCATION_VAR)
BUCKET = variable(config.GCP_BUCKET_NAME_VAR)
DATASET = variable(config.GCP_DATASET_VAR)
