"""Walkthrough 3_3: where `yellow_cab_main` moves the files it loaded once `yellow_cab_subflow` succeeded."""
from __future__ import annotations

ARCHIVE_PREFIX = "yellow-cab-archive/"


def archive_moves(loads, prefix: str, archive_prefix: str = ARCHIVE_PREFIX) -> list[dict]:
    """GCSToGCSOperator kwargs moving each loaded (or already loaded) file from `prefix` to the same path
    under `archive_prefix`. `loads` are load_file's answers: a failed load has none, so it stays put."""
    moves = []
    for load in loads:
        if load["status"] not in ("loaded", "already_loaded"):
            continue
        name = load["object_name"]
        moves.append({"source_object": name, "destination_object": archive_prefix + name.removeprefix(prefix)})
    return sorted(moves, key=lambda m: m["source_object"])
