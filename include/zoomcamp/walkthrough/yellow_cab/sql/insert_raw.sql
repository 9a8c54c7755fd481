INSERT INTO {{ raw_table }} ({{ columns }})
SELECT {{ values }}
FROM {{ staging_table }}
WHERE NOT EXISTS (SELECT 1 FROM {{ raw_table }} WHERE source_uri = @uri AND source_generation = @generation)
