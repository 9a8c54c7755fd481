"""Course flow 06: which of the four GCP key/values Airflow's environment fixes, checked before any is stored."""
from __future__ import annotations

from collections.abc import Mapping

from include.zoomcamp.errors import PermanentError


class FixedByEnvironment(PermanentError):
    """A value asked for differs from the one Airflow's environment sets (AIRFLOW_VAR_<KEY>), which a stored
    Variable cannot change."""


def values_in_environment(values: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The keys of `values` that `environ` sets as AIRFLOW_VAR_<KEY>, with the environment's value;
    FixedByEnvironment naming each key and zoomcamp.env when one of them differs from the value asked."""
    in_environment = {key: environ[f"AIRFLOW_VAR_{key}"] for key in values if f"AIRFLOW_VAR_{key}" in environ}
    if differing := {key: value for key, value in values.items() if key in in_environment
                     and in_environment[key] != value}:
        raise FixedByEnvironment(
            "; ".join(f"{key} is {in_environment[key]!r} in Airflow's environment (AIRFLOW_VAR_{key}), which "
                      f"a stored Variable cannot change (asked: {value!r})" for key, value in differing.items())
            + ". In real GCP mode these come from zoomcamp.env: edit it there and restart `make run` "
              "(docs/gcp.md#one-place-for-project-bucket-and-dataset).")
    return in_environment
