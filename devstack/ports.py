"""The ports of the local services: one place for `make run`, the tests, Docker Compose and the Astro override."""

# (state key, environment variable to choose the port, conventional port)
PORTS = (
    ("pg_port", "ZOOMCAMP_PG_PORT", 5432),
    ("api_port", "ZOOMCAMP_API_PORT", 8080),
    ("pubsub_port", "ZOOMCAMP_PUBSUB_PORT", 8681),  # 8085, gcloud's default, is pgAdmin's in docker-compose
    ("gcs_port", "ZOOMCAMP_GCS_PORT", 9023),
    ("bq_port", "ZOOMCAMP_BQ_PORT", 9050),
    ("bq_grpc_port", "ZOOMCAMP_BQ_GRPC_PORT", 9060),
    # Airflow's log servers (devstack.log_server): the worker's and the triggerer's, Airflow's default ports.
    ("worker_log_port", "ZOOMCAMP_WORKER_LOG_PORT", 8793),
    ("trigger_log_port", "ZOOMCAMP_TRIGGER_LOG_PORT", 8794),
    # The CeleryExecutor's broker (`make run EXECUTOR=celery`; devstack/redis.py).
    ("redis_port", "ZOOMCAMP_REDIS_PORT", 6379),
)


def default_port(key: str) -> int:
    return {name: port for name, _, port in PORTS}[key]
