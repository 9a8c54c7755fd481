INSERT INTO {{ log_table }} ({{ columns }})
SELECT {{ parameters }} FROM (SELECT 1)
WHERE NOT EXISTS (SELECT 1 FROM {{ log_table }} WHERE bucket = @bucket AND object_name = @object_name AND generation = @generation)
