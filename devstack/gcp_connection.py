"""`python -m devstack.gcp_connection` (run by `make run` in real GCP mode, under Airflow's environment).

Creates connection google_cloud_default without a key in the metadata database when no secrets backend,
environment variable or database row defines it — never replacing one — then prints, as one JSON line,
what its credentials are (include/zoomcamp/gcp/credentials.py: source, identity, project; never the key).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys

from include.zoomcamp import config

DESCRIPTION = ("Created by `make run GCP=real` without a key: the google provider then uses "
               "GOOGLE_APPLICATION_CREDENTIALS or Application Default Credentials. Put a service account's "
               "key here (Keyfile JSON or Keyfile Path) to use that instead (docs/gcp.md).")


def main() -> int:
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from include.zoomcamp.gcp import credentials

    created = False
    try:
        conn = Connection.get_connection_from_secrets(config.GCP_CONN_ID)
    except AirflowNotFoundException:
        conn = Connection(conn_id=config.GCP_CONN_ID, conn_type="google_cloud_platform", description=DESCRIPTION)
        with create_session() as session:
            session.add(conn)
        created = True
    found = credentials.discover(conn.extra_dejson, os.environ)
    print(json.dumps({**dataclasses.asdict(found), "created": created}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
