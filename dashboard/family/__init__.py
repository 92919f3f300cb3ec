"""The family view (issue 13): what a relative reads about the person they are linked to.

- `state`: where the person is now, in plain words, from the latest facts (pure).
- `nights`: last night's sleep and the last days compared with their usual (pure).
- `store`: the SQL that gathers those facts (TimescaleDB rollups, devices, alerts).
- `routes`: GET /api/v1/family/residents and /family/residents/{id}/summary.
"""
