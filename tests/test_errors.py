"""The one error policy: PermanentError fails at once, RetryableError and anything else go to the retries, on
every DAG's default_args, GCP tasks included (their GCP rules first)."""
from __future__ import annotations

import pytest
from airflow.sdk import RetryAction

from include.zoomcamp.defaults import GCP_DEFAULT_ARGS, RETRY_DEFAULT_ARGS
from include.zoomcamp.gcp.naming import InvalidGcpName
from include.zoomcamp.taxi.source import TaxiFileError, TaxiFileNotPublished, TaxiFileTruncated


def action(policy, exc: BaseException) -> RetryAction:
    return policy.evaluate(exc, try_number=1, max_tries=4).action


@pytest.mark.parametrize("policy", [RETRY_DEFAULT_ARGS["retry_policy"], GCP_DEFAULT_ARGS["retry_policy"]],
                         ids=["default", "gcp"])
def test_permanent_errors_fail_at_once_and_the_rest_is_retried(policy):
    assert action(policy, TaxiFileError("header differs")) == RetryAction.FAIL
    assert action(policy, TaxiFileNotPublished("HTTP 404")) == RetryAction.FAIL
    assert action(policy, InvalidGcpName("bad name")) == RetryAction.FAIL
    assert action(policy, TaxiFileTruncated("gzip ends early")) == RetryAction.DEFAULT  # a fresh download fixes it
    assert action(policy, ConnectionError("reset")) == RetryAction.DEFAULT
    assert action(policy, RuntimeError("anything else")) == RetryAction.DEFAULT


def test_a_gcp_error_no_retry_fixes_fails_at_once_on_gcp_tasks_only():
    from google.api_core import exceptions

    denied = exceptions.Forbidden("storage.objects.create access denied for bucket 'b'")
    assert action(GCP_DEFAULT_ARGS["retry_policy"], denied) == RetryAction.FAIL
    assert action(RETRY_DEFAULT_ARGS["retry_policy"], denied) == RetryAction.DEFAULT
