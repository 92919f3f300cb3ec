"""Learning each resident: daily features, personal baselines, routine changes and the
outlier digest (issue 15)."""
