"""Yellow-cab CSV files into `yc_retry.trips_clean`, with a fallback and a rollback (walkthrough 3_4).

Per file (`yellow_cab_retry_main` maps over them):

1. `load_staging` (`files`): the CSV into its own staging table, every column STRING;
2. `yellow_cab_retry_subflow` cleans the staging table into `trips_clean` (`cleaning`): a strict typed
   insert, else a safe-cast fallback that sets aside the rows it cannot keep in `trips_rejected`;
3. `rollback` (`cleaning`) when the subflow failed: the file's rows leave `trips_clean` and `trips_rejected`.

Rows carry `source_uri` and `source_generation` (GCS): that is what a rerun replaces and what a
rollback deletes. `tables` names the tables and creates them.
"""
