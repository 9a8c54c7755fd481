{# keep: the condition a staging row must meet, or none to insert every row -#}
INSERT INTO {{ clean_table }} ({{ columns }})
SELECT {{ values }}, @uri, @generation, '{{ cleaning }}'
FROM {{ staging_table }}{% if keep is not none %} WHERE {{ keep }}{% endif %}
