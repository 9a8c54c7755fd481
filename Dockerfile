# Astro Runtime 3.3 (Airflow 3.3). `astro dev start` installs requirements.txt and copies
# dags/, include/ and plugins/; airflow_settings.yaml provides the connection and Variables.
FROM astrocrpublic.azurecr.io/runtime:3.3-1
