"""BigQuery as the DAGs use it, in one place: a table's name in SQL, a query's job configuration (for
BigQueryInsertJobOperator and for the client), and a query's rows or single value. Clients come from the
Google provider's BigQueryHook (connection `google_cloud_default`); GoogleSQL everywhere, never legacy SQL."""
from __future__ import annotations


def table_ref(project: str, dataset: str, table: str) -> str:
    """`project.dataset.table`, quoted for GoogleSQL."""
    return f"`{project}.{dataset}.{table}`"


def query_job(sql: str) -> dict:
    """BigQueryInsertJobOperator's `configuration` for one statement."""
    return {"query": {"query": sql, "useLegacySql": False}}


def job_config(params: list | None = None):
    """The client's QueryJobConfig: GoogleSQL with these query parameters."""
    from google.cloud import bigquery

    return bigquery.QueryJobConfig(query_parameters=params or [], use_legacy_sql=False)


def query_rows(client, sql: str, params: list | None = None) -> list:
    return list(client.query(sql, job_config=job_config(params)).result())


def query_scalar(client, sql: str, params: list | None = None):
    """The first column of the first row."""
    return query_rows(client, sql, params)[0][0]
