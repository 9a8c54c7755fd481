CREATE OR REPLACE EXTERNAL TABLE {{ table }} (
{{ columns }}
)
OPTIONS (format = 'CSV', uris = [{{ uri }}], skip_leading_rows = 1, ignore_unknown_values = TRUE)
