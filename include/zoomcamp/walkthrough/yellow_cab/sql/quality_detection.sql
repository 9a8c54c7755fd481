CREATE OR REPLACE TABLE {{ table }} AS
SELECT * FROM {{ enriched_table }}
WHERE {{ condition }}
