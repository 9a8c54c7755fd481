"""Sample inputs for the Kestra-on-GCP walkthrough, generated (deterministic, small), never downloaded.

`walkthrough_setup` uploads them so the walkthrough's flows have something to read offline:

- `yellow-cab/yellow_tripdata_2023-01.parquet` and `yellow-cab/yellow_tripdata_2024-01.parquet`:
  trips in TLC's yellow Parquet layout (int32 ids, timestamp[us]); 2023 spells `airport_fee`,
  2024 `Airport_fee`, as TLC's own files do (and from 2025 `cbd_congestion_fee` is added); a few
  trips in every hundred carry the faults real TLC files have (see `ANOMALIES`), for 3_3's detections;
- `taxi_zone_lookup.csv`: LocationID, Borough, Zone, service_zone for ids 1-265.

Same inputs, same bytes: uploading only objects whose MD5 differs keeps their generations, so a
second setup gives the ingest nothing new to load.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import logging
import random

from include.zoomcamp import config

log = logging.getLogger(__name__)

YELLOW_PREFIX = "yellow-cab/"
ZONES_OBJECT = "taxi_zone_lookup.csv"
ZONE_COLUMNS = ("LocationID", "Borough", "Zone", "service_zone")
SAMPLE_ROWS = 2000
# (year, month) -> how that year's TLC files spell the airport fee
SAMPLE_MONTHS = {(2023, 1): "airport_fee", (2024, 1): "Airport_fee"}
CBD_FEE_SINCE = 2025
LOCATION_IDS = range(1, 266)
_BOROUGHS = (("Manhattan", "Yellow Zone"), ("Brooklyn", "Boro Zone"), ("Queens", "Boro Zone"),
             ("Bronx", "Boro Zone"), ("Staten Island", "Boro Zone"))
# Row i with i % 100 == k gets fault k (overwriting its random values): what 3_3's detections look for.
ANOMALIES = (
    {"fare_amount": -12.5, "total_amount": -15.0},        # a refund: negative amounts
    {"trip_distance": 0.0},                               # a fare for no distance
    {"duration_seconds": 30},                             # under a minute
    {"trip_distance": 0.05},                              # under a tenth of a mile
    {"duration_seconds": 4 * 3600},                       # over three hours
    {"trip_distance": 150.0},                             # over a hundred miles
    {"PULocationID": 264},                                # an unknown zone
    {"DOLocationID": 0},                                  # not in the zone lookup
    {"trip_distance": 0.0, "duration_seconds": 20},       # both suspicious and short
)


def yellow_object_name(year: int, month: int) -> str:
    return f"{YELLOW_PREFIX}yellow_tripdata_{year:04d}-{month:02d}.parquet"


def yellow_parquet(rows: int, seed: int = 0, airport_fee: str = "Airport_fee",
                   start: dt.datetime = dt.datetime(2024, 1, 1), cbd_congestion_fee: bool = True,
                   anomalies: bool = True) -> bytes:
    """`rows` trips in TLC's yellow Parquet layout, picked up within 28 days of `start` (seeded: same
    arguments, same bytes), with the faults of `ANOMALIES` unless `anomalies` is false."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rnd = random.Random(seed)
    start = start + dt.timedelta(days=seed % 28)
    pickups = [start + dt.timedelta(seconds=rnd.randrange(86_400)) for _ in range(rows)]

    def money(lo: float, hi: float):
        return pa.array([round(rnd.uniform(lo, hi), 2) for _ in range(rows)], pa.float64())

    columns = {
        "VendorID": pa.array([rnd.choice([1, 2]) for _ in range(rows)], pa.int32()),
        "tpep_pickup_datetime": pa.array(pickups, pa.timestamp("us")),
        "tpep_dropoff_datetime": pa.array([p + dt.timedelta(minutes=rnd.randrange(2, 60)) for p in pickups],
                                          pa.timestamp("us")),
        "passenger_count": pa.array([rnd.choice([1, 1, 2, None]) for _ in range(rows)], pa.int64()),
        "trip_distance": money(0.3, 20),
        "RatecodeID": pa.array([1] * rows, pa.int64()),
        "store_and_fwd_flag": pa.array([rnd.choice(["N", "N", "Y"]) for _ in range(rows)], pa.string()),
        "PULocationID": pa.array([rnd.choice(LOCATION_IDS) for _ in range(rows)], pa.int32()),
        "DOLocationID": pa.array([rnd.choice(LOCATION_IDS) for _ in range(rows)], pa.int32()),
        "payment_type": pa.array([rnd.choice([1, 2]) for _ in range(rows)], pa.int64()),
        "fare_amount": money(3, 80), "extra": money(0, 3), "mta_tax": money(0.5, 0.5),
        "tip_amount": money(0, 15), "tolls_amount": money(0, 0), "improvement_surcharge": money(1, 1),
        "total_amount": money(5, 100), "congestion_surcharge": money(2.5, 2.5), airport_fee: money(0, 1.75),
    }
    if cbd_congestion_fee:
        columns["cbd_congestion_fee"] = money(0, 0.75)
    if anomalies:
        _add_anomalies(columns)
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def _add_anomalies(columns: dict) -> None:
    import pyarrow as pa

    values = {name: columns[name].to_pylist() for name in columns}
    for i, pickup in enumerate(values["tpep_pickup_datetime"]):
        if i % 100 >= len(ANOMALIES):
            continue
        for name, value in ANOMALIES[i % 100].items():
            if name == "duration_seconds":
                values["tpep_dropoff_datetime"][i] = pickup + dt.timedelta(seconds=value)
            else:
                values[name][i] = value
    for name, array in columns.items():
        columns[name] = pa.array(values[name], array.type)


def zone_lookup_csv() -> bytes:
    """A taxi-zone lookup with TLC's header; 1 is Newark Airport (EWR), 264/265 the unknown ones."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(ZONE_COLUMNS)
    for location_id in LOCATION_IDS:
        if location_id == 1:
            row = ("EWR", "Newark Airport", "EWR")
        elif location_id == 264:
            row = ("Unknown", "N/A", "N/A")
        elif location_id == 265:
            row = ("N/A", "Outside of NYC", "N/A")
        else:
            borough, service_zone = _BOROUGHS[location_id % len(_BOROUGHS)]
            row = (borough, f"{borough} Zone {location_id}", service_zone)
        writer.writerow((location_id, *row))
    return buf.getvalue().encode()


def sample_objects(rows: int = SAMPLE_ROWS) -> dict[str, bytes]:
    """object name -> bytes of every sample input."""
    objects = {
        yellow_object_name(year, month): yellow_parquet(rows, seed=year * 100 + month, airport_fee=spelling,
                                                        start=dt.datetime(year, month, 1),
                                                        cbd_congestion_fee=year >= CBD_FEE_SINCE)
        for (year, month), spelling in SAMPLE_MONTHS.items()
    }
    objects[ZONES_OBJECT] = zone_lookup_csv()
    return objects


def upload_samples(bucket: str, conn_id: str = config.GCP_CONN_ID, rows: int = SAMPLE_ROWS) -> dict[str, str]:
    """Upload the samples to `bucket`, each only when the object is absent or differs (by MD5);
    returns object name -> "uploaded" | "unchanged"."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    gcs_bucket = GCSHook(gcp_conn_id=conn_id).get_conn().bucket(bucket)
    done = {}
    for name, data in sample_objects(rows).items():
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        existing = gcs_bucket.get_blob(name)
        if existing is not None and existing.md5_hash == md5:
            log.info("gs://%s/%s is already this sample (generation %s)", bucket, name, existing.generation)
            done[name] = "unchanged"
            continue
        blob = gcs_bucket.blob(name)
        blob.upload_from_string(data, content_type="text/csv" if name.endswith(".csv") else "application/octet-stream")
        log.info("Uploaded gs://%s/%s (%d bytes, generation %s)", bucket, name, len(data), blob.generation)
        done[name] = "uploaded"
    return done
