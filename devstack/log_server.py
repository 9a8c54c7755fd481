"""Airflow's log server on 127.0.0.1 only: `python -m devstack.log_server`.

The api-server reads a running or deferred task's log from the log server of the machine that runs it
(`http://<hostname>:<port>/log/<file>`, a JWT signed with `[api] secret_key` in each request): the
worker's at `[logging] worker_log_server_port`, the triggerer's at `[logging] trigger_log_server_port`.
`airflow scheduler` and `airflow triggerer` start their own on every interface (Airflow 3.3 has no
setting for their address), so devstack.standalone starts them with --skip-serve-logs and this process
serves Airflow's own log-server app at both ports, on loopback. Both serve the same folder,
`[logging] base_log_folder`, as on one machine Airflow's two do.
"""
from __future__ import annotations

import socket

HOST = "127.0.0.1"
PORT_SETTINGS = ("worker_log_server_port", "trigger_log_server_port")


def listening_sockets(ports: list[int]) -> list[socket.socket]:
    sockets = []
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sockets.append(sock)
    return sockets


def main() -> None:
    import uvicorn
    from airflow.configuration import conf
    from airflow.utils.serve_logs.log_server import get_app

    ports = sorted({conf.getint("logging", key) for key in PORT_SETTINGS})
    level = conf.get("logging", "uvicorn_logging_level", fallback="info").lower()
    config = uvicorn.Config(get_app(), log_level=level, log_config=None, access_log=False)
    print(f"Serving task logs on {', '.join(f'{HOST}:{port}' for port in ports)}", flush=True)
    uvicorn.Server(config).run(sockets=listening_sockets(ports))


if __name__ == "__main__":
    main()
