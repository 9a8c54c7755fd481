"""Walkthrough 3_3 (`yellow_cab_subflow`): the trip-quality rules, and the SQL of every table built from them.

One place for the rules: each detection is a named predicate over `YellowCab.trips_enriched` built
from the thresholds below, and `trips_curated` keeps the enriched trips that none of them flags
(a NULL in a rule's columns does not flag a trip). Every statement is `CREATE OR REPLACE TABLE … AS
SELECT`, so a rerun rebuilds the tables from `raw_data` and the zone lookup as they are then.

The SQL is GoogleSQL that BigQuery and bqemulator 1.1.0 (DuckDB behind the BigQuery API) both run:
`TIMESTAMP_DIFF`, `EXTRACT(HOUR …)`, `LEFT JOIN`, `IN (…)`, `COALESCE`, `ROUND` (checked by the
tests on the emulator).
"""
from __future__ import annotations

from airflow.sdk import RetryAction, RetryRule

from include.zoomcamp import config, sql
from include.zoomcamp.gcp.bigquery import table_ref
from include.zoomcamp.walkthrough.yellow_cab.tables import RAW_TABLE

SUBFLOW_DAG_ID = "yellow_cab_subflow"
ZONES_TABLE = "taxi_zone_lookup"
ENRICHED_TABLE = "trips_enriched"
CURATED_TABLE = "trips_curated"
ZONE_SCHEMA = (  # taxi_zone_lookup.csv, TLC's header
    {"name": "LocationID", "type": "INTEGER", "mode": "NULLABLE"},
    {"name": "Borough", "type": "STRING", "mode": "NULLABLE"},
    {"name": "Zone", "type": "STRING", "mode": "NULLABLE"},
    {"name": "service_zone", "type": "STRING", "mode": "NULLABLE"},
)

# The rules (TLC's data dictionary: amounts in dollars, distances in miles).
MIN_TRIP_SECONDS = 60          # short: under a minute …
MIN_TRIP_MILES = 0.1           # … or under a tenth of a mile
MAX_TRIP_SECONDS = 3 * 3600    # long: over three hours …
MAX_TRIP_MILES = 100           # … or over a hundred miles
UNKNOWN_LOCATION_IDS = (264, 265)  # the lookup's "Unknown" and "Outside of NYC"/"N/A" zones

DETECTIONS: dict[str, str] = {
    # a refund-like negative amount, or a fare charged for no distance at all
    "suspicious_trips": "fare_amount < 0 OR total_amount < 0 OR (trip_distance = 0 AND fare_amount > 0)",
    "short_trips": f"trip_duration_seconds < {MIN_TRIP_SECONDS} OR trip_distance < {MIN_TRIP_MILES}",
    "long_trips": f"trip_duration_seconds > {MAX_TRIP_SECONDS} OR trip_distance > {MAX_TRIP_MILES}",
    # no zone in the lookup (the LEFT JOIN found no borough), or one of the lookup's unknown zones
    "invalid_location_trips": (
        "pickup_borough IS NULL OR dropoff_borough IS NULL"
        f" OR PULocationID IN {UNKNOWN_LOCATION_IDS} OR DOLocationID IN {UNKNOWN_LOCATION_IDS}"),
}

# Aggregations over every enriched trip: (table, group-by column expression, its name).
AGGREGATIONS: dict[str, tuple[str, str]] = {
    "trips_by_borough": ("pickup_borough", "pickup_borough"),
    "trips_by_hour": ("EXTRACT(HOUR FROM tpep_pickup_datetime)", "pickup_hour"),
}
AGGREGATE_COLUMNS = (
    "COUNT(*) AS trips",
    "ROUND(SUM(total_amount), 2) AS total_amount",
    "ROUND(AVG(fare_amount), 2) AS avg_fare_amount",
    "ROUND(AVG(trip_distance), 2) AS avg_trip_distance",
    "ROUND(AVG(trip_duration_seconds) / 60, 2) AS avg_trip_minutes",
)
# The subflow's tasks retry network and server errors; a job BigQuery refuses (a zone lookup that is
# not the CSV described, a missing table or object) fails at once: a retry would read the same input.
BIGQUERY_REFUSED = RetryRule(
    exception=["google.api_core.exceptions.BadRequest", "google.api_core.exceptions.NotFound"],
    action=RetryAction.FAIL, reason="BigQuery refused the job's input or SQL: a retry would read the same")
TABLES = (ZONES_TABLE, ENRICHED_TABLE, *DETECTIONS, *AGGREGATIONS, CURATED_TABLE)


def enriched_sql(project: str, dataset: str = config.YELLOW_CAB_DATASET) -> str:
    """Every raw trip with its duration and pickup/drop-off borough, zone and service zone."""
    return sql.render(__file__, "quality_enriched", enriched_table=table_ref(project, dataset, ENRICHED_TABLE),
                      raw_table=table_ref(project, dataset, RAW_TABLE),
                      zones_table=table_ref(project, dataset, ZONES_TABLE))


def detection_sql(name: str, project: str, dataset: str = config.YELLOW_CAB_DATASET) -> str:
    return sql.render(__file__, "quality_detection", table=table_ref(project, dataset, name),
                      enriched_table=table_ref(project, dataset, ENRICHED_TABLE), condition=DETECTIONS[name])


def aggregation_sql(name: str, project: str, dataset: str = config.YELLOW_CAB_DATASET) -> str:
    expression, column = AGGREGATIONS[name]
    return sql.render(__file__, "quality_aggregation", table=table_ref(project, dataset, name),
                      expression=expression, column=column, aggregates=", ".join(AGGREGATE_COLUMNS),
                      enriched_table=table_ref(project, dataset, ENRICHED_TABLE))


def curated_sql(project: str, dataset: str = config.YELLOW_CAB_DATASET) -> str:
    """Enriched trips no detection flags. The same predicates as the detection tables (not a join with
    them): a NULL counts as not flagged, as it does there."""
    flagged = " OR ".join(f"COALESCE({rule}, FALSE)" for rule in DETECTIONS.values())
    return sql.render(__file__, "quality_curated", table=table_ref(project, dataset, CURATED_TABLE),
                      enriched_table=table_ref(project, dataset, ENRICHED_TABLE), flagged=flagged)
