DELETE FROM {{ table }} WHERE source_uri = @uri AND source_generation = @generation
