"""Usage ledger and rollups, audit log, metrics, health and readiness."""
