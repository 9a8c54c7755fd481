SELECT DISTINCT CAST(DATE({{ pickup }}) AS STRING) AS d FROM {{ table }} WHERE {{ pickup }} IS NOT NULL ORDER BY d
