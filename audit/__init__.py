"""The tamper-evident audit trail: an append-only log whose entries are chained by SHA-256."""
