"""One open routine-change alert carries every feature that changed (issue 15).

The alert store keeps one open alert per resident and type (a partial unique index), so a
second feature that changes while a routine-change alert is open joins that alert instead of
opening another: its change (feature, direction, day, the numbers and the explanation) is
added to the alert's `details["changes"]`, which every page and the alert's history show.
The per-feature limit (one alert per feature per `cooldown_days`) is routine.py's and holds
whatever the store does. Pure and light (no numpy): the pipeline's store imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Change = Mapping[str, Any]


def changes_of(details: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The changes an alert's details hold: `changes`, or (details written before a list was
    kept) the one change the top-level fields describe."""
    if not details:
        return []
    listed = details.get("changes")
    if isinstance(listed, list):
        return [dict(c) for c in listed if isinstance(c, Mapping) and "feature" in c]
    if "feature" in details:
        return [{k: v for k, v in details.items() if k != "changes"}]
    return []


def _key(change: Change) -> tuple[str, str]:
    return str(change.get("feature")), str(change.get("direction"))


def merge_changes(open_details: Mapping[str, Any] | None, new_details: Mapping[str, Any] | None
                  ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The open alert's details with the new trigger's changes joined, and the changes that
    were added: a feature not in the alert yet, or the same feature and direction again on a
    later day (its numbers replace the older ones, at the end of the list: newest last). The
    top-level fields stay those of the change that opened the alert (the chart opens on it)."""
    merged = dict(open_details or {})
    changes = changes_of(open_details)
    added = []
    for change in changes_of(new_details):
        old = next((c for c in changes if _key(c) == _key(change)), None)
        if old is not None and str(old.get("day", "")) >= str(change.get("day", "")):
            continue  # the same change again (a redelivery): nothing new
        if old is not None:
            changes.remove(old)
        changes.append(change)
        added.append(change)
    merged["changes"] = changes
    return merged, added
