"""GCP errors a retry cannot fix, told apart from the ones it can, and explained: one module for both.

`explain` turns an exception raised by a Google client into what the learner must do: credentials
refused, an API not enabled, a permission missing (named, with the IAM role that grants it), a
project, bucket, dataset, table, topic or subscription that does not exist. `GcpRetryPolicy` (the
`retry_policy` of GCP_DEFAULT_ARGS) fails such tasks at once, logging the explanation, and leaves
everything else (network, 5xx, rate limits) to the task's retries with backoff.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from airflow.sdk import RetryAction, RetryDecision, RetryPolicy

from include.zoomcamp import config

log = logging.getLogger(__name__)

ROLES_DOC = "docs/gcp.md#a-service-account-with-the-least-roles"
# 403 reasons BigQuery and GCS give for load, not for access: retried.
RETRYABLE_403_REASONS = ("rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "backendError")

# Permission (prefix) -> the predefined role that grants it, most specific first.
PERMISSION_ROLES = (
    ("storage.buckets.create", "roles/storage.admin on the project"),
    ("storage.buckets.update", "roles/storage.admin on the bucket"),
    ("storage.buckets.", "roles/storage.admin on the bucket"),
    ("storage.objects.get", "roles/storage.objectViewer (or roles/storage.objectAdmin) on the bucket"),
    ("storage.objects.list", "roles/storage.objectViewer (or roles/storage.objectAdmin) on the bucket"),
    ("storage.", "roles/storage.objectAdmin on the bucket"),
    ("bigquery.jobs.create", "roles/bigquery.jobUser on the project"),
    ("bigquery.datasets.create", "roles/bigquery.dataEditor on the project"),
    ("bigquery.", "roles/bigquery.dataEditor on the dataset"),
    ("pubsub.subscriptions.consume", "roles/pubsub.subscriber on the subscription"),
    ("pubsub.topics.publish", "roles/pubsub.publisher on the topic"),
    ("pubsub.", "roles/pubsub.editor on the project"),
    ("serviceusage.", "roles/serviceusage.serviceUsageConsumer on the project"),
    ("resourcemanager.projects.", "roles/browser on the project"),
)
# Without a permission in the message: the service's roles the DAGs need.
SERVICE_ROLES = {
    "storage": "roles/storage.objectAdmin on the bucket (roles/storage.admin to create buckets)",
    "bigquery": "roles/bigquery.dataEditor on the dataset and roles/bigquery.jobUser on the project",
    "pubsub": "roles/pubsub.editor on the project (roles/pubsub.subscriber to pull)",
}
SERVICE_APIS = {"storage": "storage.googleapis.com", "bigquery": "bigquery.googleapis.com",
                "pubsub": "pubsub.googleapis.com"}

_PERMISSION = re.compile(r"\b((?:storage|bigquery|pubsub|serviceusage|resourcemanager)(?:\.[A-Za-z]+){2,})\b")
_BUCKET_NAME = r"([a-z0-9][a-z0-9._-]*[a-z0-9])"
# in a JSON API URL (/b/<bucket>), a gs:// URI, or quoted after the word bucket, in this order
_BUCKETS = (re.compile(r"/b/" + _BUCKET_NAME + r"(?:[/?:]|$)"), re.compile(r"gs://" + _BUCKET_NAME),
            re.compile(r"bucket[ :]+['\"]" + _BUCKET_NAME + r"['\"]", re.IGNORECASE))
_BQ_PATH = re.compile(r"projects/([a-z][a-z0-9-]*[a-z0-9])/datasets/([A-Za-z0-9_]+)(?:/tables/([A-Za-z0-9_$]+))?")
_BQ_NAME = re.compile(r"\b(Dataset|Table) ([a-z][a-z0-9-]*[a-z0-9]):([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_$]+))?")
_PUBSUB = re.compile(r"projects/([a-z][a-z0-9-]*[a-z0-9])/(topics|subscriptions)/([A-Za-z0-9._~+%-]+)"
                     r"|resource=([A-Za-z0-9._~+%-]+)")
_PROJECT = re.compile(r"\bprojects?[/ =:]+'?([a-z][a-z0-9-]{4,28}[a-z0-9])\b", re.IGNORECASE)


@dataclass(frozen=True)
class Explanation:
    """What to tell the learner, and whether a retry could help (then the task's retries apply)."""

    message: str
    retryable: bool = False


def _service(text: str) -> str:
    """storage, bigquery or pubsub, as far as the message tells ('' when it does not)."""
    lower = text.lower()
    if "/topics/" in lower or "/subscriptions/" in lower or "pub/sub" in lower:
        return "pubsub"
    for service in ("storage", "bigquery", "pubsub"):
        if f"{service}.googleapis.com" in lower or f"{service}." in lower or f"{service} api" in lower:
            return service
    if _BQ_NAME.search(text):
        return "bigquery"
    return ""


def _resource(text: str, service: str) -> str:
    """The resource named in a Google error message, as `bucket 'x'`, `dataset 'p:d'`, ..."""
    if match := _BQ_NAME.search(text) or _BQ_PATH.search(text):
        project, dataset, table = match.groups()[-3:]
        return f"table '{project}:{dataset}.{table}'" if table else f"dataset '{project}:{dataset}'"
    if match := _PUBSUB.search(text):
        project, kind, name, bare = match.groups()
        if kind:
            return f"{kind[:-1]} 'projects/{project}/{kind}/{name}'"
        return f"{'Pub/Sub resource' if service == 'pubsub' else 'resource'} '{bare}'"
    for pattern in _BUCKETS:
        if match := pattern.search(text):
            return f"bucket '{match.group(1)}'"
    if match := _PROJECT.search(text):
        return f"project '{match.group(1)}'"
    return "the resource named in the error above"


def _role(text: str, service: str) -> tuple[str, str]:
    """(missing permission or '', the role that grants it)."""
    for permission in _PERMISSION.findall(text):
        if "googleapis" in permission:  # a host name (storage.googleapis.com), not a permission
            continue
        for prefix, role in PERMISSION_ROLES:
            if permission.startswith(prefix):
                return permission, role
    return "", SERVICE_ROLES.get(service, "the roles listed for this DAG")


def _reasons(exc: BaseException) -> list[str]:
    reasons = []
    for error in getattr(exc, "errors", None) or []:
        if isinstance(error, dict) and error.get("reason"):
            reasons.append(str(error["reason"]))
    reason = getattr(exc, "reason", None)
    if reason:
        reasons.append(str(reason))
    return reasons


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)


def explain(exc: BaseException, conn_id: str = config.GCP_CONN_ID) -> Explanation | None:
    """The explanation of a GCP error no retry can fix; None for any other exception."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    from include.zoomcamp.gcp import credentials

    if isinstance(exc, (auth.DefaultCredentialsError, auth.RefreshError)):
        return Explanation(f"The GCP credentials of connection {conn_id!r} are missing or were refused: "
                           f"{type(exc).__name__}: {exc}. {credentials.three_ways(conn_id)}")
    if not isinstance(exc, api.GoogleAPICallError):
        return None
    text = _message(exc)
    service = _service(text)
    resource = _resource(text, service)
    reasons = _reasons(exc)
    if isinstance(exc, api.Unauthorized):
        return Explanation(f"GCP did not accept the credentials of connection {conn_id!r} (401): {text}. "
                           f"{credentials.three_ways(conn_id)}")
    if isinstance(exc, (api.Forbidden, api.PermissionDenied)):
        if any(reason in RETRYABLE_403_REASONS for reason in reasons):
            return Explanation(f"GCP is limiting requests ({', '.join(reasons)}): retried", retryable=True)
        if "SERVICE_DISABLED" in reasons or "has not been used in project" in text or "is disabled" in text:
            api_name = SERVICE_APIS.get(service, "<the API named above>")
            return Explanation(f"The {service or 'GCP'} API is not enabled in the project: {text}. Enable it: "
                               f"`gcloud services enable {api_name} --project <project>`, then clear the task.")
        if "billing" in text.lower():
            return Explanation(f"The project has no billing account: {text}. Link one (console > Billing), "
                               "then clear the task.")
        permission, role = _role(text, service)
        missing = f"permission {permission} is missing" if permission else "access is denied"
        hint = ""
        if resource.startswith("bucket"):
            hint = (" If the bucket is not yours (bucket names are global, another project may own it), choose "
                    "another GCP_BUCKET_NAME.")
        return Explanation(f"GCP refused access (403) to {resource} for connection {conn_id!r}: {missing}. "
                           f"Grant the service account {role} ({ROLES_DOC}).{hint} Error: {text}")
    if isinstance(exc, api.NotFound):
        fix = {"bucket": "create it with 07_gcp_setup (or set GCP_BUCKET_NAME to yours)",
               "dataset": "create it with 07_gcp_setup or the DAG's setup (or set GCP_DATASET to yours)",
               "project": "check GCP_PROJECT_ID (the project ID, not its name or number)"}
        kind = resource.split(" ", 1)[0]
        return Explanation(f"{resource[0].upper()}{resource[1:]} does not exist or connection {conn_id!r} cannot "
                           f"see it: {fix.get(kind, 'create it (the DAG setup tasks do) or fix its name')}; "
                           f"without access GCP answers 404 too (roles: {ROLES_DOC}). Error: {text}")
    if isinstance(exc, api.Conflict) and "not available" in text and resource.startswith("bucket"):
        return Explanation(f"The {resource} belongs to someone else (bucket names are global): choose another "
                           f"GCP_BUCKET_NAME. Error: {text}")
    return None


class GcpRetryPolicy(RetryPolicy):
    """Fail at once on GCP errors no retry can fix, logging what to do; everything else goes to `then`
    (another policy, e.g. a DAG's own rules) or to the task's retries."""

    def __init__(self, then: RetryPolicy | None = None, conn_id: str = config.GCP_CONN_ID) -> None:
        self.then = then
        self.conn_id = conn_id

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int,
                 context: Any = None) -> RetryDecision:
        explanation = explain(exception, self.conn_id)
        if explanation is not None and not explanation.retryable:
            log.error("%s", explanation.message)
            return RetryDecision.fail(explanation.message)
        if self.then is not None:
            return self.then.evaluate(exception, try_number, max_tries, context)
        return RetryDecision(action=RetryAction.DEFAULT)

    def serialize(self) -> dict[str, Any]:
        return {"__type": type(self).__name__, "then": self.then.serialize() if self.then else None}
