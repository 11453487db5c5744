"""Alerts, the product's central output: the model, the state the rules keep, one module per rule
beside the SQL it runs, and publication.

- ``models``: alerts, cooldowns, each track's last position, and the rules' state tables;
- ``statements``: the SQL pieces every rule shares (a batch's new detections, an alert's columns);
- ``geofence``: border crossings (with direction) and zone entries, one statement per batch;
- ``zone_dwell``: zone entries once a tracked object has stayed inside for ``zone_dwell_s``;
- ``watchlist``: plates, MMSIs, IMOs and vessel names on the agency's watch-list;
- ``maritime``: dark vessels, AIS gaps, rendezvous, loitering;
- ``health``: sensors going offline and coming back;
- ``rules``: the order in which the ingest worker runs them per batch, and the timed sweep;
- ``publish``: the alerts on MQTT, one topic per agency.
"""
