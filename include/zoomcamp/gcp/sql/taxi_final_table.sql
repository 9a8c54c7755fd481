CREATE TABLE IF NOT EXISTS {{ table }} (
{{ columns }}
)
PARTITION BY DATE({{ pickup }})
