"""`eldercare eval`: a labelled simulated cohort run through the platform's own detection code
and decision-storing logic, scored per alert type against its ground truth (docs/evaluation.md).

Modules: `devices` (what the devices send, as the gateway's records), `habits` (what the daily
rollups would learn), `book` (the alert store's open/repeat/suppress decisions, in memory),
`runner` (one resident's run, the cohort in parallel), `labels` (ground truth with allowed
windows), `scoring`, `targets`, `report`, `e2e` (the sample through MQTT), `cli`.
"""
