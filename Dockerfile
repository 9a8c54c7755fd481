# Astro Runtime 3.3 (Airflow 3.3): the image of `astro dev start` / `astro deploy` and of docker-compose.yaml.
# The Runtime's ONBUILD steps install packages.txt (Debian packages) and requirements.txt (pip) at build and
# copy the project (dags/, include/, plugins/, devstack/ for the compose file's set-up) into /usr/local/airflow.
FROM astrocrpublic.azurecr.io/runtime:3.3-1
