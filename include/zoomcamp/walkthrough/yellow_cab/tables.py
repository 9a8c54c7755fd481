"""The tables of `YellowCab` the yellow-cab ingests write: `raw_data` (the trips as uploaded, one load per
object generation) and `ingest_log` (the object generations loaded), with their BigQuery table resources.
"""
from __future__ import annotations

RAW_TABLE = "raw_data"
INGEST_LOG_TABLE = "ingest_log"

# TLC's current yellow trip Parquet schema (2025: cbd_congestion_fee added; 2024 spells Airport_fee,
# 2023 airport_fee). BigQuery names are case-insensitive, so one column takes both spellings.
YELLOW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("VendorID", "INTEGER"),
    ("tpep_pickup_datetime", "TIMESTAMP"),
    ("tpep_dropoff_datetime", "TIMESTAMP"),
    ("passenger_count", "INTEGER"),
    ("trip_distance", "FLOAT"),
    ("RatecodeID", "INTEGER"),
    ("store_and_fwd_flag", "STRING"),
    ("PULocationID", "INTEGER"),
    ("DOLocationID", "INTEGER"),
    ("payment_type", "INTEGER"),
    ("fare_amount", "FLOAT"),
    ("extra", "FLOAT"),
    ("mta_tax", "FLOAT"),
    ("tip_amount", "FLOAT"),
    ("tolls_amount", "FLOAT"),
    ("improvement_surcharge", "FLOAT"),
    ("total_amount", "FLOAT"),
    ("congestion_surcharge", "FLOAT"),
    ("Airport_fee", "FLOAT"),
    ("cbd_congestion_fee", "FLOAT"),
)

SOURCE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("source_uri", "STRING", "gs://bucket/object the row was loaded from"),
    ("source_generation", "INTEGER", "GCS generation of that object"),
)

INGEST_LOG_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("bucket", "STRING", "GCS bucket"),
    ("object_name", "STRING", "object name"),
    ("generation", "INTEGER", "object generation (one load per generation)"),
    ("event_type", "STRING", "GCS event that announced it (manual-run without one)"),
    ("source_format", "STRING", "PARQUET or CSV"),
    ("rows_loaded", "INTEGER", "rows inserted into raw_data"),
    ("run_id", "STRING", "Airflow run that loaded it"),
    ("loaded_at", "TIMESTAMP", "when"),
)


def raw_table_resource() -> dict:
    fields = [{"name": n, "type": t, "mode": "NULLABLE"} for n, t in YELLOW_COLUMNS]
    fields += [{"name": n, "type": t, "mode": "NULLABLE", "description": d} for n, t, d in SOURCE_COLUMNS]
    return {"schema": {"fields": fields},
            "description": "Yellow-cab trips as uploaded to GCS; one load per object generation"}


def ingest_log_resource() -> dict:
    fields = [{"name": n, "type": t, "mode": "NULLABLE", "description": d} for n, t, d in INGEST_LOG_COLUMNS]
    return {"schema": {"fields": fields}, "description": "Objects loaded into raw_data (bucket, object, generation)"}
