CREATE OR REPLACE TABLE {{ enriched_table }} AS
SELECT t.*,
  TIMESTAMP_DIFF(t.tpep_dropoff_datetime, t.tpep_pickup_datetime, SECOND) AS trip_duration_seconds,
  pz.Borough AS pickup_borough, pz.Zone AS pickup_zone, pz.service_zone AS pickup_service_zone,
  dz.Borough AS dropoff_borough, dz.Zone AS dropoff_zone, dz.service_zone AS dropoff_service_zone
FROM {{ raw_table }} AS t
LEFT JOIN {{ zones_table }} AS pz ON t.PULocationID = pz.LocationID
LEFT JOIN {{ zones_table }} AS dz ON t.DOLocationID = dz.LocationID
