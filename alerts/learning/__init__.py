"""The detector learns each resident (issue 15): daily features (`features`), personal
baselines (`baselines`), routine-change detection (`routine`), their storage (`store`) and
the scheduled job (`job`). docs/alerts.md, "Routine change"."""
