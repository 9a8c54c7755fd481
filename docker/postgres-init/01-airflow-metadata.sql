-- Airflow's own metadata database lives beside ny_taxi, as in `make run`.
CREATE DATABASE airflow;
