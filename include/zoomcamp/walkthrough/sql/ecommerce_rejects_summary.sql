SELECT reject_reason, COUNT(*) AS n FROM {{ errors_table }} GROUP BY reject_reason ORDER BY reject_reason
