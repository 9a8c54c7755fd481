"""GCP's naming rules for the four course key/values, checked before anything is stored or created."""
from __future__ import annotations

import ipaddress
import re

from include.zoomcamp.errors import PermanentError

_BUCKET_PART = re.compile(r"^[a-z0-9][a-z0-9_-]*[a-z0-9]$|^[a-z0-9]$")
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_LOCATION = re.compile(r"^[A-Za-z]+(-[a-z]+[0-9]+)?$")


class InvalidGcpName(PermanentError, ValueError):
    pass


def validate_bucket(name: str) -> str:
    """Cloud Storage bucket rules (3-63 characters; 222 with dots, each part at most 63)."""
    problems = []
    if not 3 <= len(name) <= (222 if "." in name else 63):
        problems.append("must be 3-63 characters long (up to 222 when it contains dots)")
    if not re.fullmatch(r"[a-z0-9._-]+", name):
        problems.append("may contain only lowercase letters, digits, dashes, underscores and dots")
    elif not all(_BUCKET_PART.match(part) and len(part) <= 63 for part in name.split(".")):
        problems.append("must start and end with a letter or digit "
                        "(each dot-separated part too, at most 63 characters)")
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        problems.append("must not start with 'goog' or contain 'google'")
    try:
        ipaddress.ip_address(name)
        problems.append("must not be an IP address")
    except ValueError:
        pass
    if problems:
        raise InvalidGcpName(f"Invalid bucket name {name!r}: " + "; ".join(problems))
    return name


def validate_dataset(name: str) -> str:
    if not _DATASET.match(name):
        raise InvalidGcpName(
            f"Invalid BigQuery dataset name {name!r}: use only letters, digits and underscores (1-1024 characters)")
    return name


def validate_project(project_id: str) -> str:
    if not _PROJECT.match(project_id):
        raise InvalidGcpName(
            f"Invalid project ID {project_id!r}: 6-30 characters, lowercase letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen")
    return project_id


def validate_location(location: str) -> str:
    if not _LOCATION.match(location):
        raise InvalidGcpName(f"Invalid location {location!r}: expected a region such as europe-west2 or a "
                             "multi-region such as EU or US")
    return location
