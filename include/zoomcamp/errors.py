"""One error policy for every task: a failure no retry can fix fails at once, everything else is retried.

Domain code raises a subclass of `PermanentError` for bad input, or a state only a person can change (a month
that is not published, a file that is not the expected CSV, a name GCP refuses, a column the query needs);
its message names the problem and what to do. `retry_policy()`, the `retry_policy` of every DAG's
default_args (include/zoomcamp/defaults.py), fails such a task on its first try. A `RetryableError` (e.g. a truncated
download, which a fresh download fixes) and every other exception (network, 5xx) get the task's retries with
backoff. Tasks do not catch one exception to raise another to choose: they raise what happened.
"""
from __future__ import annotations


class PermanentError(Exception):
    """A failure a retry cannot fix; the message says what is wrong and what to do."""


class RetryableError(Exception):
    """A failure a retry can fix, even where it is a kind of PermanentError (a truncated download of a file
    whose other errors are permanent)."""


def retry_policy(*rules):
    """An Airflow ExceptionRetryPolicy: RetryableError to the task's retries, PermanentError failed at once,
    then a DAG's own `rules` (RetryRule), anything else to the task's retries. (A function: the loaders
    import this module without Airflow.)"""
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    return ExceptionRetryPolicy(rules=[
        RetryRule(exception=RetryableError, action=RetryAction.DEFAULT),
        RetryRule(exception=PermanentError, action=RetryAction.FAIL, reason="a retry cannot fix this: see the error"),
        *rules,
    ])
