CREATE OR REPLACE TABLE {{ errors_table }} AS
{{ judged_rows }}
SELECT {{ columns }}, reject_reason, raw_row_hash
FROM judged
WHERE reject_reason IS NOT NULL
