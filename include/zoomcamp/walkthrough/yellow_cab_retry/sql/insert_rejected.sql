INSERT INTO {{ rejected_table }} ({{ columns }})
SELECT {{ values }}, @uri, @generation, CONCAT('empty or unparsable:', {{ reason }})
FROM {{ staging_table }} WHERE NOT ({{ keep }})
