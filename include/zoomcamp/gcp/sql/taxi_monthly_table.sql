CREATE OR REPLACE TABLE {{ table }} AS
SELECT {{ row_id }} AS unique_row_id, {{ file_name }} AS filename, *
FROM {{ external_table }}
