"""BigQuery as the DAGs use it, in one place: a table's name in SQL, a query's job configuration (for
BigQueryInsertJobOperator and for the client), a query's rows or single value, and a file loaded into a
staging table. Clients come from the Google provider's BigQueryHook (connection `google_cloud_default`);
GoogleSQL everywhere, never legacy SQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

STAGING_TTL = timedelta(hours=6)  # a staging table left by a crash expires by itself


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


def load_file_to_staging(client, uri: str, staging: str, schema: list[tuple[str, str]], fmt: str) -> int:
    """The object at `uri` (`fmt`: CSV with a header row, or PARQUET) in the table `staging`
    (`project.dataset.table`), made anew with `schema` ((name, type) pairs) and an expiry STAGING_TTL
    ahead; returns its row count. BigQuery's BadRequest or NotFound for a file it cannot read as `fmt`
    reach the caller, which names the file."""
    from google.cloud import bigquery

    table = bigquery.Table(staging, schema=[bigquery.SchemaField(name, bq_type) for name, bq_type in schema])
    table.expires = datetime.now(timezone.utc) + STAGING_TTL
    client.delete_table(staging, not_found_ok=True)  # one left by an earlier try
    client.create_table(table)
    csv_options = {"skip_leading_rows": 1, "allow_quoted_newlines": True} if fmt == "CSV" else {}
    load_config = bigquery.LoadJobConfig(source_format=fmt, write_disposition="WRITE_TRUNCATE",
                                         create_disposition="CREATE_NEVER", autodetect=False, **csv_options)
    client.load_table_from_uri(uri, staging, job_config=load_config).result()
    return query_scalar(client, f"SELECT count(*) FROM `{staging}`")
