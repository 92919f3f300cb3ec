"""The resident ledger and the sites, in the web API (issue 13)."""
