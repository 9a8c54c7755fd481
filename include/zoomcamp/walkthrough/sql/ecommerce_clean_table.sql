CREATE OR REPLACE TABLE {{ clean_table }} AS
{{ judged_rows }}
SELECT {{ columns }}, raw_row_hash
FROM judged
WHERE reject_reason IS NULL
