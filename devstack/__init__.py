"""Embedded local services for development and tests (not deployed with the DAGs).

`python -m devstack run` starts everything and Airflow; `services`/`stop` manage the
services alone. See README.md.
"""
