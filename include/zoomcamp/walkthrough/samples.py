"""Sample inputs for the Kestra-on-GCP walkthrough, generated (deterministic, small), never downloaded.

`walkthrough_setup` uploads them so the walkthrough's flows have something to read offline:

- `yellow-cab/yellow_tripdata_2023-01.parquet` and `yellow-cab/yellow_tripdata_2024-01.parquet`:
  trips in TLC's yellow Parquet layout (int32 ids, timestamp[us]); 2023 spells `airport_fee`,
  2024 `Airport_fee`, as TLC's own files do (and from 2025 `cbd_congestion_fee` is added); a few
  trips in every hundred carry the faults real TLC files have (see `ANOMALIES`), for 3_3's detections;
- `taxi_zone_lookup.csv`: LocationID, Borough, Zone, service_zone for ids 1-265;
- `data.csv` (3_1): a retail transactions export in the "Online Retail" layout, with the real
  export's flaws (cancellations, bad quantities and prices, unparsable values, missing customers).
- `yc-retry/data/*.csv` (3_4): a good, a dirty and a broken yellow-cab CSV (see `retry_objects`).

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
from include.zoomcamp.walkthrough import ecommerce

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
    objects[RETAIL_OBJECT] = retail_export_csv()
    objects.update(retry_objects())
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


# --- Walkthrough 3_1: the retail transactions export (`data.csv`) ------------------------------------

RETAIL_OBJECT = ecommerce.DATA_OBJECT
RETAIL_ROWS = 2000
RETAIL_COLUMNS = ecommerce.EXPORT_COLUMNS
# StockCode|Description|UnitPrice, as in the real export (trailing spaces and all)
_PRODUCTS = tuple(tuple(line.split("|")) for line in """\
85123A|WHITE HANGING HEART T-LIGHT HOLDER|2.55
71053|WHITE METAL LANTERN|3.39
84406B|CREAM CUPID HEARTS COAT HANGER|2.75
22752|SET 7 BABUSHKA NESTING BOXES|7.65
21730|GLASS STAR FROSTED T-LIGHT HOLDER|4.25
22633|HAND WARMER UNION JACK|1.85
84879|ASSORTED COLOUR BIRD ORNAMENT|1.69
22745|POPPY'S PLAYHOUSE BEDROOM |2.1
21754|HOME BUILDING BLOCK WORD|5.95
22960|JAM MAKING SET WITH JARS|4.25
POST|POSTAGE|18
23084|RABBIT NIGHT LIGHT|2.08
47566|PARTY BUNTING|4.95
21212|PACK OF 72 RETROSPOT CAKE CASES|0.55
22423|REGENCY CAKESTAND 3 TIER|12.75
85099B|JUMBO BAG RED RETROSPOT|1.95
22197|SMALL POPCORN HOLDER|0.85
23298|SPOTTY BUNTING|4.95
20725|LUNCH BAG RED RETROSPOT|1.65
22086|PAPER CHAIN KIT 50'S CHRISTMAS |2.95
21175|GIN + TONIC DIET METAL SIGN|2.1
22138|BAKING SET 9 PIECE RETROSPOT |4.95
84997D|CHILDRENS CUTLERY POLKADOT PINK|4.15
23203|JUMBO BAG DOILEY PATTERNS|2.08
79321|CHILLI LIGHTS|5.75
22111|SCOTTIE DOG HOT WATER BOTTLE|4.95
22616|PACK OF 12 LONDON TISSUES |0.29
22077|6 RIBBONS RUSTIC CHARM|1.95
22178|VICTORIAN GLASS HANGING T-LIGHT|1.25
15056BL|EDWARDIAN PARASOL BLACK|5.95
35004C|SET OF 3 COLOURED  FLYING DUCKS|5.45
22469|HEART OF WICKER SMALL|1.65
90214A|LETTER "A" BLING KEY RING|0.29
22554|PLASTERS IN TIN WOODLAND ANIMALS|1.65
21080|SET/20 RED RETROSPOT PAPER NAPKINS |0.85
23166|MEDIUM CERAMIC TOP STORAGE JAR|1.25
22659|LUNCH BOX I LOVE LONDON|1.95
84029E|RED WOOLLY HOTTIE WHITE HEART.|3.75
22910|PAPER CHAIN KIT VINTAGE CHRISTMAS|2.95
21485|RETROSPOT HEART HOT WATER BOTTLE|4.95
85014B|RED RETROSPOT UMBRELLA|5.95
21035|SET/2 RED RETROSPOT TEA TOWELS |3.25
23355|CRÈME BRÛLÉE SET, 4 RAMEKINS|6.35
M|Manual|0.85""".splitlines())
_COUNTRIES = ("United Kingdom",) * 9 + ("France", "Germany", "EIRE", "Spain", "Netherlands", "Belgium", "Switzerland",
                                         "Portugal", "Australia", "Norway", "Channel Islands", "RSA")
# Flaws of the real export, per line: (chance, what it does to the line). Lines of a cancelled invoice
# (prefix C, negative quantities) and lines of invoices without a customer come on top.
_FLAWS = (
    (0.010, {"Quantity": ("", "x", "3.5", "twelve")}),
    (0.010, {"UnitPrice": ("", "abc", "1,25", "N/A")}),
    (0.010, {"InvoiceDate": ("", "13/45/2010 9:41", "2010-12-01 08:26", "12/1/2010", "31/12/2010 10:00")}),
    (0.015, {"UnitPrice": ("0", "0.0", "0.00")}),  # free samples
    (0.010, {"Quantity": ("0", "-1", "-12", "-24")}),  # stock adjustments (no C prefix)
    (0.005, {"UnitPrice": ("-11062.06", "-0.01")}),  # "Adjust bad debt"
    (0.005, {"InvoiceNo": ("", " ")}),
    (0.005, {"CustomerID": ("", " ")}),
)


def _export_date(when: dt.datetime) -> str:
    """The export's InvoiceDate: `12/1/2010 8:26` (no zero padding but the minutes)."""
    return f"{when.month}/{when.day}/{when.year} {when.hour}:{when.minute:02d}"


def retail_export_csv(rows: int = RETAIL_ROWS, seed: int = 31) -> bytes:
    """`rows` lines of a retail transactions export in the "Online Retail" layout (seeded: same
    arguments, same bytes), UTF-8 with a header: invoices of 1-12 lines from 1 Dec 2010, ~4% of them
    cancelled (InvoiceNo `C…`, negative quantities), ~15% without a customer, plus `_FLAWS` on single
    lines and a few exact duplicate lines (as in the real data)."""
    rnd = random.Random(seed)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(RETAIL_COLUMNS)
    invoice_no, when, written, previous = 536365, dt.datetime(2010, 12, 1, 8, 26), 0, None
    while written < rows:
        cancelled = rnd.random() < 0.04
        customer = "" if rnd.random() < 0.15 else str(rnd.randrange(12346, 18288))
        country = rnd.choice(_COUNTRIES)
        for _ in range(min(rnd.randrange(1, 13), rows - written)):
            code, description, price = rnd.choice(_PRODUCTS)
            quantity = rnd.choice((1, 2, 3, 4, 6, 8, 10, 12, 24, 48))
            line = {"InvoiceNo": f"C{invoice_no}" if cancelled else str(invoice_no), "StockCode": code,
                    "Description": description, "Quantity": str(-quantity if cancelled else quantity),
                    "InvoiceDate": _export_date(when), "UnitPrice": price, "CustomerID": customer, "Country": country}
            for chance, change in _FLAWS:
                if rnd.random() < chance:
                    column, values = next(iter(change.items()))
                    line[column] = rnd.choice(values)
            if previous is not None and rnd.random() < 0.01:
                line = previous  # an exact duplicate of the line before
            writer.writerow([line[c] for c in RETAIL_COLUMNS])
            previous, written = line, written + 1
        invoice_no += 1
        when += dt.timedelta(minutes=rnd.randrange(1, 180))
    return buf.getvalue().encode()
# -- Walkthrough 3_4 (retry & rollback): yellow-cab CSV files under yc-retry/data/ ----------------
# good: every value casts (the strict insert takes it: archive/); dirty: a few rows with an empty or
# unparsable required field and some unparsable optional values (strict fails, the safe-cast fallback
# keeps the rest: archive/, the bad rows in trips_rejected); broken: every pickup and drop-off time
# in a spreadsheet's US format (strict and fallback both fail: errors/, nothing kept).
RETRY_PREFIX = "yc-retry/"
RETRY_ROWS = 300
RETRY_GOOD = "yellow_tripdata_2024-02.csv"
RETRY_DIRTY = "yellow_tripdata_2024-03.csv"
RETRY_BROKEN = "yellow_tripdata_2024-04.csv"
RETRY_DIRTY_EVERY = 20  # every 20th row of the dirty file has a bad required field
_US_TIME = "%m/%d/%Y %I:%M %p"
_BAD_REQUIRED = (("fare_amount", "N/A"), ("tpep_pickup_datetime", ""), ("PULocationID", "unknown"),
                 ("total_amount", "12,50"))
_BAD_OPTIONAL = (("passenger_count", "two"), ("payment_type", "card"))


def yellow_csv(rows: int, seed: int, start: dt.datetime, kind: str = "good") -> bytes:
    """`rows` trips as a CSV with TLC's yellow columns (2024 layout: `Airport_fee`), from the same
    generator as the Parquet samples; `kind` is good, dirty or broken (see above)."""
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(yellow_parquet(rows, seed=seed, start=start, cbd_congestion_fee=False)))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=table.column_names, lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(table.to_pylist()):
        for column in ("tpep_pickup_datetime", "tpep_dropoff_datetime"):
            row[column] = row[column].strftime(_US_TIME if kind == "broken" else "%Y-%m-%d %H:%M:%S")
        if kind == "dirty" and i % RETRY_DIRTY_EVERY == 0:
            column, value = _BAD_REQUIRED[(i // RETRY_DIRTY_EVERY) % len(_BAD_REQUIRED)]
            row[column] = value
        if kind == "dirty" and i % RETRY_DIRTY_EVERY == 7:
            column, value = _BAD_OPTIONAL[(i // RETRY_DIRTY_EVERY) % len(_BAD_OPTIONAL)]
            row[column] = value
        writer.writerow(row)
    return buf.getvalue().encode()


def retry_objects(prefix: str = RETRY_PREFIX, rows: int = RETRY_ROWS) -> dict[str, bytes]:
    """object name -> bytes of the three 3_4 inputs under `<prefix>data/`."""
    files = ((RETRY_GOOD, 2, "good"), (RETRY_DIRTY, 3, "dirty"), (RETRY_BROKEN, 4, "broken"))
    return {f"{prefix}data/{name}": yellow_csv(rows, seed=202400 + month, start=dt.datetime(2024, month, 1), kind=kind)
            for name, month, kind in files}
