{# pickup_dates: the partitions to read (a list of DATE literals), or none to read the whole final table -#}
MERGE INTO {{ final_table }} T
USING {{ monthly_table }} S
ON T.unique_row_id = S.unique_row_id{% if pickup_dates is not none %} AND (DATE(T.{{ pickup }}) IN ({{ pickup_dates }}) OR T.{{ pickup }} IS NULL){% endif %}
WHEN NOT MATCHED THEN
  INSERT ({{ columns }})
  VALUES ({{ source_columns }})
