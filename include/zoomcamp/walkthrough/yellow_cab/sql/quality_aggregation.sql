CREATE OR REPLACE TABLE {{ table }} AS
SELECT {{ expression }} AS {{ column }}, {{ aggregates }}
FROM {{ enriched_table }}
GROUP BY 1
