"""The live feed: server-sent events of changes in the caller's agency scope, resumable."""

from __future__ import annotations

from datetime import timedelta

import orjson

from tests.factories import TH_LAND, now

API = "/api/v1"


def read_events(client, headers, **params) -> list[tuple[str, str | None, dict | None]]:
    """(event, id, data) of a bounded stream; a bare id line appears as (None, id, None)."""
    params = {"max_seconds": 1, "interval": 0.2, **params}
    out, current = [], {}
    with client.stream("GET", f"{API}/live", params=params, headers=headers) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line == "":
                if current:
                    out.append((current.get("event"), current.get("id"), current.get("data")))
                current = {}
            elif line.startswith(("event: ", "id: ")):
                key, value = line.split(": ", 1)
                current[key] = value
            elif line.startswith("data: "):
                current["data"] = orjson.loads(line[6:])
    return out


def test_changes_in_scope_stream_and_resume(client, world, factory):
    a, b = world.agency(), world.agency()
    ready = read_events(client, a.operator_h)[0]
    assert ready[0] == "ready" and ready[2]["agency_code"] == a.code
    resume_from = ready[1]

    unit_id, device = world.unit(a, TH_LAND, device=True)
    sensor = factory.sensor(a.code, *TH_LAND)
    alert = factory.alert(sensor, a.code, TH_LAND[0], TH_LAND[1], now() - timedelta(minutes=1))
    their_sensor = factory.sensor(b.code, *TH_LAND)
    their_alert = factory.alert(their_sensor, b.code, TH_LAND[0], TH_LAND[1], now() - timedelta(minutes=1))
    world.unit(b, TH_LAND)
    world.settle()
    incident = client.post(f"{API}/incidents", json={"alert_ids": [alert]}, headers=a.operator_h).json()
    client.post(f"{API}/incidents", json={"alert_ids": [their_alert]}, headers=b.operator_h)
    tasking = client.post(
        f"{API}/incidents/{incident['id']}/taskings", json={"unit_id": unit_id}, headers=a.operator_h
    ).json()

    events = read_events(client, {**a.operator_h, "Last-Event-ID": resume_from})
    got = {(kind, data["id"]) for kind, _, data in events if data and kind != "ready"}
    assert got == {("alert", alert), ("incident", incident["id"]), ("unit", unit_id), ("tasking", tasking["id"])}
    alert_event = next(data for kind, _, data in events if kind == "alert")
    assert alert_event["geometry"] == {"type": "Point", "coordinates": list(TH_LAND)}
    # Every event names where to resume, and a bare id line closes each batch.
    assert all(event_id for _, event_id, _ in events)
    assert events[-1][0] is None and events[-1][2] is None
    # An alert is sent once, however many looks the stream takes.
    assert [kind for kind, _, _ in events].count("alert") == 1

    only = read_events(client, {**a.operator_h, "Last-Event-ID": resume_from}, types=["tasking"])
    assert {kind for kind, _, data in only if data and kind != "ready"} == {"tasking"}


def test_bad_resume_ids_are_refused(client, world):
    a = world.agency()
    r = client.get(f"{API}/live", headers={**a.operator_h, "Last-Event-ID": "yesterday"})
    assert r.status_code == 422
