"""include/zoomcamp/sql.py: `.sql` files beside their module, rendered with Jinja, every placeholder given.

The statements' behaviour is checked by their modules' tests on the emulators and DuckDB; here, the
loader's errors, and that every `.sql` file under include/ is rendered by its caller with the values it
passes (none missing, none extra, nothing left unrendered)."""
from __future__ import annotations

from pathlib import Path

import pytest

from include.zoomcamp import sql
from include.zoomcamp.gcp import bigquery_sql
from include.zoomcamp.taxi.schemas import SCHEMAS
from include.zoomcamp.walkthrough import ecommerce, subflows
from include.zoomcamp.walkthrough.yellow_cab import files as yellow_cab_files
from include.zoomcamp.walkthrough.yellow_cab import loader as yellow_cab_loader
from include.zoomcamp.walkthrough.yellow_cab import quality as yellow_cab_quality
from include.zoomcamp.walkthrough.yellow_cab_retry import cleaning as yellow_cab_retry

INCLUDE = Path(__file__).resolve().parent.parent / "include"


@pytest.fixture
def module_file(tmp_path):
    """A module path whose sql/ directory the test writes (the module itself need not exist)."""
    (tmp_path / "sql").mkdir()
    return str(tmp_path / "module.py")


def write_sql(module_file: str, name: str, text: str) -> Path:
    path = Path(module_file).parent / "sql" / f"{name}.sql"
    path.write_text(text)
    return path


def test_renders_values_and_drops_the_final_newline(module_file):
    write_sql(module_file, "pick", "SELECT {{ columns }}\nFROM {{ table }}\n")
    assert sql.render(module_file, "pick", columns="a, b", table="`p.d.t`") == "SELECT a, b\nFROM `p.d.t`"


def test_values_are_inserted_as_they_are(module_file):
    """A value holding Jinja (an Airflow template the task renders at run time) is not rendered again."""
    write_sql(module_file, "pick", "SELECT * FROM {{ table }}")
    airflow_template = "`{{ var.value.get('gcp_project_id', 'p') }}.d.t`"
    assert sql.render(module_file, "pick", table=airflow_template) == f"SELECT * FROM {airflow_template}"


def test_a_missing_value_fails_naming_it(module_file):
    path = write_sql(module_file, "pick", "SELECT {{ columns }} FROM {{ table }}")
    with pytest.raises(sql.SqlTemplateError, match=r"no value for placeholder\(s\) \['table'\]") as caught:
        sql.render(module_file, "pick", columns="a")
    assert str(path) in str(caught.value)


def test_a_missing_attribute_fails_naming_it(module_file):
    write_sql(module_file, "pick", "SELECT {{ schema.pickup }} FROM t")
    with pytest.raises(sql.SqlTemplateError, match=r"has no attribute 'pickup'"):
        sql.render(module_file, "pick", schema=object())


def test_a_value_without_a_placeholder_fails_naming_it(module_file):
    write_sql(module_file, "pick", "SELECT {{ columns }} FROM t")
    with pytest.raises(sql.SqlTemplateError, match=r"value\(s\) \['colums'\] given but the file has no such"):
        sql.render(module_file, "pick", columns="a", colums="b")


def test_an_optional_part_is_left_out_when_its_value_is_none(module_file):
    write_sql(module_file, "pick", "SELECT * FROM t{% if keep is not none %} WHERE {{ keep }}{% endif %}\n")
    assert sql.render(module_file, "pick", keep=None) == "SELECT * FROM t"
    assert sql.render(module_file, "pick", keep="a > 0") == "SELECT * FROM t WHERE a > 0"


def test_a_missing_file_fails_naming_the_path(module_file):
    expected = Path(module_file).parent / "sql" / "absent.sql"
    with pytest.raises(sql.SqlTemplateError, match=f"SQL file {expected} does not exist"):
        sql.render(module_file, "absent")


class RecordingClient:
    """Collects the statements `yellow_cab_retry.delete_rows` sends (the emulator runs them in its own tests)."""

    class Job:
        num_dml_affected_rows = 0

        def result(self):
            return []

    def __init__(self):
        self.statements = []

    def query(self, statement, job_config=None):
        self.statements.append(statement)
        return self.Job()


def build_every_statement(tmp_path) -> list[str]:
    """Every statement the modules build from `.sql` files, with inputs like theirs."""
    statements = [ecommerce.clean_table_sql("p"), ecommerce.errors_table_sql("p"), ecommerce.reconciliation_sql("p"),
                  ecommerce.reasons_summary_sql("p"), yellow_cab_quality.enriched_sql("p"),
                  yellow_cab_quality.curated_sql("p")]
    statements += [yellow_cab_quality.detection_sql(name, "p") for name in yellow_cab_quality.DETECTIONS]
    statements += [yellow_cab_quality.aggregation_sql(name, "p") for name in yellow_cab_quality.AGGREGATIONS]
    for schema in SCHEMAS.values():
        monthly = bigquery_sql.monthly_table(schema, "2019", "01")
        statements += [bigquery_sql.create_final_table(schema, "p", "d"),
                       bigquery_sql.create_external_table(schema, "p", "d", monthly, "gs://b/o.csv"),
                       bigquery_sql.create_monthly_table(schema, "p", "d", monthly, "o.csv"),
                       bigquery_sql.pickup_dates(schema, "p", "d", monthly),
                       bigquery_sql.merge_new_rows(schema, "p", "d", monthly, ["2019-01-01"]),
                       bigquery_sql.course_merge(schema, "p", "d", monthly)]
    obj = yellow_cab_files.GcsObject("b", "yellow/o.csv", 1)
    statements.append(yellow_cab_loader.insert_select_sql("p", "d", "stage", [("VendorID", "STRING")], "CSV", obj)[0])
    statements.append(yellow_cab_loader.ingest_log_sql("p", "d", ["bucket", "object_name", "generation"]))
    columns = [("VendorID", "VendorID", "INTEGER"), ("fare_amount", "fare_amount", "FLOAT")]
    statements.append(yellow_cab_retry.strict_insert_sql("p", "stage", columns))
    statements += yellow_cab_retry.safe_cast_sql("p", "stage", columns).values()
    client = RecordingClient()
    yellow_cab_retry.delete_rows(client, "p", "gs://b/o.csv", 1)
    statements += client.statements
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,customer_name,quantity,total\n1,a,2,3.5\n")
    subflows.aggregate_orders(orders)
    return statements


def test_every_sql_file_is_rendered_by_its_caller(tmp_path, monkeypatch):
    rendered = []
    real_render = sql.render

    def recording_render(package_file, name, **values):
        rendered.append(sql.sql_path(package_file, name))
        return real_render(package_file, name, **values)

    monkeypatch.setattr(sql, "render", recording_render)
    statements = build_every_statement(tmp_path)
    assert set(rendered) == set(INCLUDE.rglob("*.sql")), "a .sql file no caller renders, or a caller without file"
    for statement in statements:
        assert statement.strip() and "{{" not in statement and "{%" not in statement, statement
