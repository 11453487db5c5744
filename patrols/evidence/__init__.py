"""Evidence on incidents and its chain of custody: every hand-over between agencies, chained by SHA-256."""
