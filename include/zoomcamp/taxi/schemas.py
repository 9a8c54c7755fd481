"""The course's taxi tables as data: one list of columns per colour, used by every loader.

Each column carries its CSV name, its Postgres type (flow 04) and its BigQuery type (flow 08),
so yellow and green share one code path and the SQL is generated once from these lists.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    bq_type: str
    description: str


@dataclass(frozen=True)
class TaxiSchema:
    taxi: str
    columns: tuple[Column, ...]
    pickup: str
    dropoff: str

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def csv_header(self) -> str:
        return ",".join(self.column_names)

    @property
    def table(self) -> str:
        return f"{self.taxi}_tripdata"

    def file_name(self, year: str, month: str) -> str:
        return f"{self.taxi}_tripdata_{year}-{month}.csv"

    def file_month(self, file_name: str) -> str | None:
        """'YYYY-MM' of a file named as `file_name` names them, else None."""
        match = re.fullmatch(rf"{self.taxi}_tripdata_(\d{{4}}-(?:0[1-9]|1[0-2]))\.csv", file_name)
        return match.group(1) if match else None


def _c(name: str, pg_type: str, bq_type: str, description: str) -> Column:
    return Column(name, pg_type, bq_type, description)


_VENDOR = _c("VendorID", "text", "STRING",
             "A code indicating the LPEP/TPEP provider that provided the record. 1= Creative Mobile "
             "Technologies, LLC; 2= VeriFone Inc.")
_PASSENGERS = _c("passenger_count", "integer", "INTEGER",
                 "The number of passengers in the vehicle. This is a driver-entered value.")
_DISTANCE = _c("trip_distance", "double precision", "NUMERIC",
               "The elapsed trip distance in miles reported by the taximeter.")
_RATECODE = _c("RatecodeID", "text", "STRING",
               "The final rate code in effect at the end of the trip. 1= Standard rate 2=JFK 3=Newark "
               "4=Nassau or Westchester 5=Negotiated fare 6=Group ride")
_STORE = _c("store_and_fwd_flag", "text", "STRING",
            "This flag indicates whether the trip record was held in vehicle memory before sending to the "
            "vendor, aka 'store and forward', because the vehicle did not have a connection to the server. "
            "Y= store and forward trip N= not a store and forward trip")
_PU = _c("PULocationID", "text", "STRING", "TLC Taxi Zone in which the taximeter was engaged")
_DO = _c("DOLocationID", "text", "STRING", "TLC Taxi Zone in which the taximeter was disengaged")
_PAYMENT = _c("payment_type", "integer", "INTEGER",
              "A numeric code signifying how the passenger paid for the trip. 1= Credit card 2= Cash "
              "3= No charge 4= Dispute 5= Unknown 6= Voided trip")
_FARE = _c("fare_amount", "double precision", "NUMERIC", "The time-and-distance fare calculated by the meter")
_EXTRA = _c("extra", "double precision", "NUMERIC",
            "Miscellaneous extras and surcharges. Currently, this only includes the $0.50 and $1 rush hour "
            "and overnight charges")
_MTA = _c("mta_tax", "double precision", "NUMERIC",
          "$0.50 MTA tax that is automatically triggered based on the metered rate in use")
_TIP = _c("tip_amount", "double precision", "NUMERIC",
          "Tip amount. This field is automatically populated for credit card tips. Cash tips are not included.")
_TOLLS = _c("tolls_amount", "double precision", "NUMERIC", "Total amount of all tolls paid in trip.")
_IMPROVEMENT = _c("improvement_surcharge", "double precision", "NUMERIC",
                  "$0.30 improvement surcharge assessed on hailed trips at the flag drop. The improvement "
                  "surcharge began being levied in 2015.")
_TOTAL = _c("total_amount", "double precision", "NUMERIC",
            "The total amount charged to passengers. Does not include cash tips.")
_CONGESTION = _c("congestion_surcharge", "double precision", "NUMERIC",
                 "Congestion surcharge applied to trips in congested zones")


def _times(prefix: str) -> tuple[Column, Column]:
    return (
        _c(f"{prefix}_pickup_datetime", "timestamp", "TIMESTAMP", "The date and time when the meter was engaged"),
        _c(f"{prefix}_dropoff_datetime", "timestamp", "TIMESTAMP", "The date and time when the meter was disengaged"),
    )


_TPEP = _times("tpep")
_LPEP = _times("lpep")

YELLOW = TaxiSchema(
    taxi="yellow",
    columns=(_VENDOR, *_TPEP, _PASSENGERS, _DISTANCE, _RATECODE, _STORE, _PU, _DO, _PAYMENT, _FARE,
             _EXTRA, _MTA, _TIP, _TOLLS, _IMPROVEMENT, _TOTAL, _CONGESTION),
    pickup="tpep_pickup_datetime",
    dropoff="tpep_dropoff_datetime",
)

GREEN = TaxiSchema(
    taxi="green",
    columns=(_VENDOR, *_LPEP, _STORE, _RATECODE, _PU, _DO, _PASSENGERS, _DISTANCE, _FARE, _EXTRA, _MTA,
             _TIP, _TOLLS,
             _c("ehail_fee", "double precision", "NUMERIC", "Always empty in the course's files"),
             _IMPROVEMENT, _TOTAL, _PAYMENT,
             _c("trip_type", "integer", "STRING",
                "A code indicating whether the trip was a street-hail or a dispatch that is automatically "
                "assigned based on the metered rate in use but can be altered by the driver. 1= Street-hail "
                "2= Dispatch"),
             _CONGESTION),
    pickup="lpep_pickup_datetime",
    dropoff="lpep_dropoff_datetime",
)

SCHEMAS = {s.taxi: s for s in (YELLOW, GREEN)}
TAXIS = tuple(SCHEMAS)


def schema_for(taxi: str) -> TaxiSchema:
    try:
        return SCHEMAS[taxi]
    except KeyError:
        raise ValueError(f"Unknown taxi {taxi!r}: expected one of {', '.join(TAXIS)}") from None
