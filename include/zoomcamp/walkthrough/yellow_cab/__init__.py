"""Yellow-cab trips from GCS into BigQuery dataset `YellowCab` (walkthrough 3_2, 3_3 and 3_5), one module per concern:

- `tables`: the names and schemas of `raw_data` and `ingest_log`;
- `files`: the files in GCS (an object generation, its format, the data files under a prefix, a file's columns);
- `loader`: one object generation into `raw_data` exactly once, recorded in `ingest_log`;
- `tasks`: the tasks the DAGs build (the dataset and tables, the listing, the load of a file);
- `archive`: where `yellow_cab_main` moves the files it loaded;
- `quality`: the trip-quality rules of `yellow_cab_subflow` and the SQL of the tables built from them.

Callers import from the module that owns the thing.
"""
