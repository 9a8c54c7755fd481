"""`python -m devstack.airflow_batch '<JSON list of argument lists>'`: several `airflow` CLI commands in one
process, run through Airflow's own CLI parser as the `airflow` command runs them, but importing Airflow once
(each `airflow` process spends seconds starting before it does anything)."""
from __future__ import annotations

import json
import sys


def main(commands: list[list[str]]) -> None:
    from airflow.cli import cli_parser
    from airflow.configuration import write_default_airflow_configuration_if_needed

    # as the `airflow` command does first: airflow.cfg with its generated secrets (JWT, Fernet) exists before
    # the components start, so they all read the same ones
    write_default_airflow_configuration_if_needed()
    parser = cli_parser.get_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        args.func(args)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
