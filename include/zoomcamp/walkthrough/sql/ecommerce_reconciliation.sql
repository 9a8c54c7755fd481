WITH raw_rows AS (SELECT {{ raw_row_hash }} AS h, COUNT(*) AS n FROM {{ raw_table }} GROUP BY h),
clean_rows AS (SELECT raw_row_hash AS h, COUNT(*) AS n FROM {{ clean_table }} GROUP BY h),
error_rows AS (SELECT raw_row_hash AS h, COUNT(*) AS n FROM {{ errors_table }} GROUP BY h),
per_row AS (
  SELECT COALESCE(r.n, 0) AS raw_n, COALESCE(c.n, 0) AS clean_n, COALESCE(e.n, 0) AS error_n
  FROM raw_rows r
  FULL OUTER JOIN clean_rows c ON r.h = c.h
  FULL OUTER JOIN error_rows e ON COALESCE(r.h, c.h) = e.h
),
counts AS (
  SELECT
    (SELECT COUNT(*) FROM {{ raw_table }}) AS raw_total,
    (SELECT COUNT(*) FROM {{ clean_table }}) AS clean_total,
    (SELECT COUNT(*) FROM {{ errors_table }}) AS error_total
),
differences AS (
  SELECT
    COALESCE(SUM(GREATEST(raw_n - clean_n - error_n, 0)), 0) AS missing,
    COALESCE(SUM(GREATEST(clean_n + error_n - raw_n, 0)), 0) AS extra,
    COUNTIF(clean_n > 0 AND error_n > 0) AS in_both
  FROM per_row
)
SELECT
  raw_total = clean_total + error_total AND missing = 0 AND extra = 0 AND in_both = 0 AS ok,
  FORMAT('{{ raw_name }} has %d rows, {{ clean_name }} %d + {{ errors_name }} %d = %d; raw rows in neither table: %d; rows not in raw (or more often than in raw): %d; raw rows in both tables: %d',
         raw_total, clean_total, error_total, clean_total + error_total, missing, extra, in_both) AS explanation
FROM counts CROSS JOIN differences
