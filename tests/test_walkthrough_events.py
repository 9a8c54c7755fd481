"""Reading the asset events of walkthrough 3_5 and building its SQL: pure functions, no services."""
from __future__ import annotations

import itertools
import logging
import re

from include.zoomcamp.walkthrough import event_ingest
from include.zoomcamp.walkthrough.yellow_cab import files, loader


def _event(*messages: dict, status: str = "success") -> dict:
    return {"from_trigger": True, "payload": {"status": status, "message": [
        {"ack_id": str(i), "message": {"attributes": m, "data": "", "message_id": str(i)}}
        for i, m in enumerate(messages)]}}


def _attrs(name: str, generation: str = "1", event: str = "OBJECT_FINALIZE", bucket: str = "b") -> dict:
    return {"bucketId": bucket, "objectId": name, "objectGeneration": generation, "eventType": event}


def test_every_message_of_every_event_once_per_generation():
    events = [_event(_attrs("landing/a.parquet"), _attrs("landing/b.CSV")),
              _event(_attrs("landing/a.parquet"), _attrs("landing/a.parquet", "2")),
              _event(_attrs("landing/readme.txt"), _attrs("other/c.parquet"),
                     _attrs("landing/d.parquet", event="OBJECT_DELETE")),
              {"from_trigger": True, "payload": {"status": "error"}}]
    selected, skipped = event_ingest.objects_to_load(events, bucket="b")
    assert [(o["object_name"], o["generation"]) for o in selected] == [
        ("landing/a.parquet", "1"), ("landing/b.CSV", "1"), ("landing/a.parquet", "2")]
    assert [s["reason"].split(" ")[0] for s in skipped] == ["duplicate", "not", "outside", "event"]


def test_an_event_for_another_bucket_is_refused_and_logged_naming_it(caplog):
    events = [_event(_attrs("landing/a.parquet", bucket="watched"), _attrs("landing/b.parquet", bucket="elsewhere"))]
    with caplog.at_level(logging.INFO, logger=event_ingest.log.name):
        selected, skipped = event_ingest.objects_to_load(events, bucket="watched")
    assert [(o["bucket"], o["object_name"]) for o in selected] == [("watched", "landing/a.parquet")]
    [refused] = skipped
    assert refused["bucket"] == "elsewhere"
    assert refused["reason"] == "refused: bucket elsewhere is not the watched bucket watched"
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "gs://elsewhere/landing/b.parquet#1" in warning.getMessage() and "watched" in warning.getMessage()


def test_staging_tables_are_unique_per_object_dag_run_and_map_index():
    """Two loads at once (two DAGs, two runs, two mapped instances) never share a staging table; a retry of
    the same instance takes its own again."""
    keys = (("yellow-cab/x.parquet", 1), ("yellow-cab/x.parquet", 2), ("yellow-cab/y.parquet", 1))
    objects = [files.GcsObject("b", name, generation) for name, generation in keys]
    loads = [loader.LoadRun(dag, run, index)
             for dag, run, index in itertools.product(("yellow_cab_sequential_ingest", "yellow_cab_main"),
                                                      ("manual__2026-01-01T00:00:00+00:00", "manual__other"),
                                                      (-1, 0, 1))]
    names = [loader.staging_table_name(obj, load) for obj in objects for load in loads]
    assert len(set(names)) == len(objects) * len(loads)
    assert all(re.fullmatch(r"_stage_raw_data_[0-9a-f]{32}", name) for name in names)  # a valid BigQuery table id
    assert loader.staging_table_name(objects[0], loads[0]) == names[0]


def test_manual_run_defaults_and_named_object():
    assert event_ingest.manual_object("") == []
    [obj] = event_ingest.manual_object("gs://bkt/landing/x.parquet", bucket="bkt")
    assert (obj["bucket"], obj["object_name"], obj["event_type"]) == ("bkt", "landing/x.parquet", "manual-run")


def test_insert_matches_columns_by_name_case_insensitively():
    obj = files.GcsObject("b", "landing/x.parquet", 7)
    assert str(obj) == "gs://b/landing/x.parquet#7"
    sql, dropped = loader.insert_select_sql("p", "YellowCab", "_stage", [
        ("VendorID", "INTEGER"), ("airport_fee", "FLOAT"), ("mystery", "STRING")], "PARQUET", obj)
    assert dropped == ["mystery"]
    assert "(`VendorID`, `Airport_fee`, `source_uri`, `source_generation`)" in sql
    assert "CAST(`airport_fee` AS FLOAT64)" in sql and "FROM `p.YellowCab._stage`" in sql
    # one statement that inserts nothing when the generation's rows are there already
    assert sql.endswith("WHERE NOT EXISTS (SELECT 1 FROM `p.YellowCab.raw_data` "
                        "WHERE source_uri = @uri AND source_generation = @generation)")
    csv_sql, _ = loader.insert_select_sql("p", "d", "s", [("passenger_count", "STRING")], "CSV", obj)
    assert "CAST(NULLIF(TRIM(`passenger_count`), '') AS INT64)" in csv_sql
    assert [files.source_format(n) for n in ("a.parquet", "a.CSV", "a.txt", "a")] == [
        "PARQUET", "CSV", None, None]
