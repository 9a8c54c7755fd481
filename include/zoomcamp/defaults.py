"""`default_args` shared by the DAGs: one place for each policy."""
from datetime import timedelta

from include.zoomcamp import config, errors
from include.zoomcamp.gcp.errors import GcpRetryPolicy
from include.zoomcamp.gcp.preflight import GcpPreflight

# Every task retries with exponential backoff: downloads, Docker Hub, GCS/BigQuery and the metadata
# database can fail for a moment. Failures a retry cannot fix (an unpublished month's HTTP 404, a
# corrupt file, an invalid name or param) raise an errors.PermanentError and fail at once
# (include/zoomcamp/errors.py).
RETRY_DEFAULT_ARGS = {
    "retries": 3,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
    "retry_policy": errors.retry_policy(),
}

# GCP tasks: the course's connection, GoogleSQL everywhere (the providers still default some operators to
# legacy SQL), a check of the credentials before the task touches GCP (real mode: missing or refused
# credentials fail at once, saying how to give them), and GCP errors no retry can fix (access denied, not
# found) failing at once with what to do (include/zoomcamp/gcp/errors.py).
GCP_DEFAULT_ARGS = {**RETRY_DEFAULT_ARGS, "gcp_conn_id": config.GCP_CONN_ID, "use_legacy_sql": False,
                    "pre_execute": GcpPreflight(), "retry_policy": GcpRetryPolicy(then=errors.retry_policy())}
