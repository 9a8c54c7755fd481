"""The yellow-cab files in GCS: an object generation, its format by extension, the data files under a prefix,
and a file's own columns read from GCS (Parquet: the footer's schema, with ranged reads; CSV: the header).
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass

from include.zoomcamp import config
from include.zoomcamp.errors import PermanentError

FORMATS = {".parquet": "PARQUET", ".csv": "CSV"}


class ObjectLoadError(PermanentError):
    """A file BigQuery refused (truncated, not Parquet/CSV, wrong columns): retrying will not help."""


@dataclass(frozen=True)
class GcsObject:
    bucket: str
    name: str
    generation: int | None

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"

    def __str__(self) -> str:  # how logs and errors name it
        return f"{self.uri}#{self.generation}" if self.generation is not None else self.uri


def source_format(object_name: str) -> str | None:
    """PARQUET or CSV by extension (case-insensitive); None for anything else."""
    return FORMATS.get(posixpath.splitext(object_name)[1].lower())


def list_data_objects(bucket: str, prefix: str, conn_id: str = config.GCP_CONN_ID,
                         formats: tuple[str, ...] = ("PARQUET",)) -> list[dict]:
    """Every object of `formats` (by extension) under `prefix` (any depth), by name: `{"bucket", "object_name",
    "generation"}` (the generation listed is the one loaded, even if the object is replaced meanwhile)."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    blobs = GCSHook(gcp_conn_id=conn_id).get_conn().list_blobs(bucket, prefix=prefix)
    objects = [{"bucket": bucket, "object_name": b.name, "generation": int(b.generation)}
               for b in blobs if source_format(b.name) in formats]
    return sorted(objects, key=lambda o: o["object_name"])


# pyarrow.types predicate -> BigQuery type; anything else loads as STRING.
_BQ_TYPE_OF_ARROW = (("is_integer", "INTEGER"), ("is_floating", "FLOAT"), ("is_boolean", "BOOLEAN"),
                     ("is_timestamp", "TIMESTAMP"), ("is_date", "DATE"), ("is_decimal", "NUMERIC"))


def _bq_type(arrow_type) -> str:
    import pyarrow.types as pat

    return next((bq for check, bq in _BQ_TYPE_OF_ARROW if getattr(pat, check)(arrow_type)), "STRING")


def file_columns(storage_client, obj: GcsObject, fmt: str) -> list[tuple[str, str]]:
    """(name, BigQuery type) of the file's columns, read from GCS without downloading the whole file."""
    import pyarrow.parquet as pq

    blob = storage_client.bucket(obj.bucket).blob(obj.name, generation=obj.generation)
    try:
        with blob.open("rb") as fh:
            if fmt == "PARQUET":
                return [(f.name, _bq_type(f.type)) for f in pq.read_schema(fh)]
            header = fh.readline().decode("utf-8-sig").strip()
    except Exception as exc:  # noqa: BLE001 - the message names the object, the type says why
        from google.api_core import exceptions

        if isinstance(exc, exceptions.GoogleAPICallError) and not isinstance(exc, exceptions.NotFound):
            raise  # GCS itself failed: let the task retry
        raise ObjectLoadError(f"{obj}: cannot read its {fmt} columns: {type(exc).__name__}: {exc}") from exc
    names = [n.strip().strip('"') for n in header.split(",")] if header else []
    if not names or not all(names):
        raise ObjectLoadError(f"{obj}: no CSV header")
    return [(n, "STRING") for n in names]
