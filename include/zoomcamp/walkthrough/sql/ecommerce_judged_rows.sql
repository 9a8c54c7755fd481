WITH parsed AS (
  SELECT
    {{ raw_columns }},
    {{ raw_row_hash }} AS raw_row_hash,
    {{ typed_columns }}
  FROM {{ raw_table }}
),
judged AS (
  SELECT *, {{ reject_reason }} AS reject_reason
  FROM parsed
)
