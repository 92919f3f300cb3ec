"""The alert row as the pages read it: one column list for every query that fills `AlertOut`.

The alert list and detail (`dashboard.api`) and the live feed (`dashboard.live.listener`) each
select alerts joined to their resident; they share these fragments so the three can never
disagree on what an alert carries (the pages merge a pushed alert into the list they loaded).
"""

from __future__ import annotations

# Every column of `dashboard.models.AlertOut`, in the order of its fields (alias a: alerts,
# r: residents). `escalates_at`: the next escalation step still to come while the alert is
# open (alerts.escalation; acknowledging stops the timetable): the wall screen's countdown.
# `site_timezone`: the IANA zone of the resident's site, which every page shows the alert's
# times in (issue 14: the site's zone, never the browser's), 'UTC' for a site without one.
ALERT_COLUMNS = """
a.id, a.resident_id, r.full_name AS resident_name, a.site_id, a.device_id, a.type,
a.severity, a.status, a.opened_at, a.created_at, a.last_seen, a.count, a.assigned_to,
a.acknowledged_by, a.acknowledged_at, a.resolved_by, a.resolved_at, a.outcome, a.note,
(SELECT min(e.due_at) FROM alert_escalations e
 WHERE e.alert_id = a.id AND e.step > 0 AND e.done_at IS NULL AND a.status = 'open'
) AS escalates_at,
(SELECT COALESCE(NULLIF(u.full_name, ''), u.username) FROM users u
 WHERE u.id = a.assigned_to) AS assigned_name,
(SELECT COALESCE(NULLIF(u.full_name, ''), u.username) FROM users u
 WHERE u.id = a.acknowledged_by) AS acknowledged_name,
COALESCE((SELECT s.timezone FROM sites s WHERE s.id = r.site_id), 'UTC') AS site_timezone
"""

# The join those columns read from.
ALERT_FROM = "FROM alerts a JOIN residents r ON r.id = a.resident_id"
