"""The alert row as the pages read it: one column list for every query that fills `AlertOut`.

The alert list and detail (`dashboard.api`) and the live feed (`dashboard.live.listener`) each
select alerts joined to their resident; they share these fragments so the three can never
disagree on what an alert carries (the pages merge a pushed alert into the list they loaded).
"""

from __future__ import annotations

# Every column of `dashboard.models.AlertOut`, in the order of its fields (alias a: alerts,
# r: residents).
ALERT_COLUMNS = """
a.id, a.resident_id, r.full_name AS resident_name, a.site_id, a.device_id, a.type,
a.severity, a.status, a.opened_at, a.created_at, a.last_seen, a.count, a.assigned_to,
a.acknowledged_by, a.acknowledged_at, a.resolved_by, a.resolved_at, a.outcome, a.note
"""

# The join those columns read from.
ALERT_FROM = "FROM alerts a JOIN residents r ON r.id = a.resident_id"
