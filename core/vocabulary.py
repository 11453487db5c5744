"""Words of the contract that packages on different layers check against: the kinds and severities
of alerts and the categories of incidents (tables' CHECK constraints, agreements' terms, webhook
and API filters). Kept here, below every domain, so that a policy package (sharing) and the
packages it governs (alerts, patrols) name them from one place."""

from __future__ import annotations

ALERT_KINDS = (
    "crossing",
    "zone_entry",
    # maritime and track analytics
    "watchlist_hit",
    "dark_vessel",
    "ais_gap",
    "rendezvous",
    "loitering",
    "sensor_offline",
    "sensor_online",
)
SEVERITIES = ("info", "low", "medium", "high", "critical")
INCIDENT_CATEGORIES = (
    "trafficking_in_persons",
    "people_smuggling",
    "drugs",
    "arms",
    "piracy",
    "wildlife_timber",
    "other",
)
