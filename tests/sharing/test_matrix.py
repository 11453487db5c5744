"""Every read path gives each agency exactly what the agreements release to it, and no personal
data they do not grant: agencies A, B, C x alert kinds and incident categories x places x times
(tests/sharing/conftest.py), the expectation computed in Python from the agreements' terms."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import text

from tests.sharing.conftest import CATEGORIES, PERSONS_PER_INCIDENT, Agreement, tasking_note

API = "/api/v1"
READERS = ("A", "B", "C")
TOKEN = re.compile(r"PII[0-9]{4}X")


def tokens_in(body: str | bytes) -> set[str]:
    return set(TOKEN.findall(body if isinstance(body, str) else body.decode()))


def get(matrix, reader: str, path: str, **params):
    r = matrix.client.get(path, params=params, headers=matrix.headers[reader])
    assert r.status_code == 200, (path, r.text[:500])
    return r


def check_features(matrix, reader: str, features: list[dict], kind: str) -> None:
    """Ids, owner marks and redaction of GeoJSON features of alerts or incidents."""
    items = matrix.by_id(kind)
    assert {f["id"] for f in features} == matrix.expected(reader, kind)
    for f in features:
        item, props = items[f["id"]], f["properties"]
        shared = item.owner != reader
        assert props["shared_by"] == (matrix.agencies[item.owner] if shared else None)
        assert props["redacted"] is (not matrix.personal(reader, item))
        if props["redacted"]:
            label = item.what.replace("_", " ")
            assert props["title"] == label
            if kind == "alert":
                assert props.get("track_key") is None and props.get("details", {}) == {}


def test_the_matrix_is_not_trivial(matrix):
    """Each reader sees some partners' items, some with and some without personal data, and misses others."""
    for reader, partner_items in (("B", "A"), ("C", "A"), ("A", "B")):
        theirs = [i for i in matrix.items if i.owner == partner_items]
        seen = [i for i in theirs if matrix.visible(reader, i)]
        assert 0 < len(seen) < len(theirs)
        assert {i.type for i in seen} == {"alert", "incident"}
    assert any(matrix.personal("B", i) for i in matrix.items if i.owner == "A")
    assert any(matrix.visible("B", i) and not matrix.personal("B", i) for i in matrix.items if i.owner == "A")


@pytest.mark.parametrize("reader", READERS)
def test_alert_features(matrix, reader):
    r = get(matrix, reader, f"{API}/alerts", limit=1000)
    check_features(matrix, reader, r.json()["features"], "alert")
    assert tokens_in(r.text) == matrix.expected_tokens(reader, "alert")
    # Detections are never shared.
    detections = get(matrix, reader, f"{API}/detections", limit=1000).json()["features"]
    assert {f["properties"]["agency_code"] for f in detections} <= {matrix.agencies[reader]}


@pytest.mark.parametrize("reader", READERS)
def test_incident_features(matrix, reader):
    r = get(matrix, reader, f"{API}/features/incidents", limit=1000)
    check_features(matrix, reader, r.json()["features"], "incident")
    assert tokens_in(r.text) == matrix.expected_tokens(reader, "incident")


@pytest.mark.parametrize("reader", READERS)
def test_incident_api_list_detail_timeline_persons(matrix, reader):
    r = get(matrix, reader, f"{API}/incidents", limit=500)
    items = r.json()["items"]
    assert {i["id"] for i in items} == matrix.expected(reader, "incident")
    assert tokens_in(r.text) == matrix.expected_tokens(reader, "incident")
    by_id = matrix.by_id("incident")
    for incident_id, item in by_id.items():
        r = matrix.client.get(f"{API}/incidents/{incident_id}", headers=matrix.headers[reader])
        if not matrix.visible(reader, item):
            assert r.status_code == 404
            assert (
                matrix.client.get(f"{API}/incidents/{incident_id}/timeline", headers=matrix.headers[reader]).status_code
                == 404
            )
            assert (
                matrix.client.get(f"{API}/incidents/{incident_id}/persons", headers=matrix.headers[reader]).status_code
                == 404
            )
            continue
        personal = matrix.personal(reader, item)
        assert r.status_code == 200
        body = r.json()
        assert body["redacted"] is (not personal)
        assert (body["created_by"] is not None) is personal
        assert tokens_in(r.text) == ({item.token} if personal else set())
        timeline = get(matrix, reader, f"{API}/incidents/{incident_id}/timeline")
        assert tokens_in(timeline.text) == ({item.token} if personal else set())
        persons = get(matrix, reader, f"{API}/incidents/{incident_id}/persons").json()
        assert len(persons) == (PERSONS_PER_INCIDENT if personal else 0)
        taskings = get(matrix, reader, f"{API}/incidents/{incident_id}/taskings")
        assert taskings.json() and tokens_in(taskings.text) == ({item.token} if personal else set())
        for t in taskings.json():
            party = matrix.agencies[reader] in (t["agency_code"], t["unit_agency_code"])
            assert t["note"] == (tasking_note(item.token) if personal or party else None), (reader, t)
            assert t["created_by"] == ("dispatcher" if personal or party else None), (reader, t)


def test_a_partner_unit_tasked_to_an_incident_sees_it_as_its_agency_may(matrix):
    """B's unit was tasked to every A incident too: its taskings carry A's titles only where B may read them."""
    r = get(matrix, "B", f"{API}/units/{matrix.units['B']}/taskings", limit=500)
    incidents = matrix.by_id("incident")
    assert {t["incident_id"] for t in r.json()["items"]} == set(incidents)
    expected = {i.token for i in incidents.values() if matrix.personal("B", i)}
    assert tokens_in(r.text) == expected
    for t in r.json()["items"]:
        item = incidents[t["incident_id"]]
        assert t["note"] == tasking_note(item.token)  # the note is to B's unit: B is party to the tasking
        if not matrix.personal("B", item):
            assert t["incident"]["title"] == item.what.replace("_", " ")


@pytest.mark.parametrize("reader", READERS)
def test_ogc_items_and_single_items(matrix, reader):
    for collection, kind in (("alerts", "alert"), ("incidents", "incident")):
        r = get(matrix, reader, f"{API}/ogc/collections/{collection}/items", limit=1000)
        check_features(matrix, reader, r.json()["features"], kind)
        assert tokens_in(r.text) == matrix.expected_tokens(reader, kind)
        for item_id, item in matrix.by_id(kind).items():
            r = matrix.client.get(f"{API}/ogc/collections/{collection}/items/{item_id}", headers=matrix.headers[reader])
            assert r.status_code == (200 if matrix.visible(reader, item) else 404)
            if r.status_code == 200:
                assert r.json()["properties"]["redacted"] is (not matrix.personal(reader, item))
                assert tokens_in(r.text) == ({item.token} if matrix.personal(reader, item) else set())


@pytest.mark.parametrize("reader", READERS)
def test_cursor_on_target_feed(matrix, reader):
    r = get(matrix, reader, f"{API}/cot", types=["alert", "incident"], alert_hours=24)
    uids = {e.get("uid") for e in ET.fromstring(r.content).iter("event")}
    for kind in ("alert", "incident"):
        ours = {int(u.rsplit(".", 1)[1]) for u in uids if u.startswith(f"borderwatch.{kind}.")}
        assert ours == matrix.expected(reader, kind)
    assert tokens_in(r.text) == matrix.expected_tokens(reader, "alert") | matrix.expected_tokens(reader, "incident")
    shared = [e for e in ET.fromstring(r.content).iter("event") if e.find("detail/__borderwatch").get("shared_by")]
    assert {e.find("detail/__borderwatch").get("shared_by") for e in shared} <= set(matrix.agencies.values())


def read_live(matrix, reader: str) -> list[tuple[str, dict]]:
    out, current = [], {}
    headers = {**matrix.headers[reader], "Last-Event-ID": "0-0"}
    with matrix.client.stream(
        "GET",
        f"{API}/live",
        params={"max_seconds": 1, "interval": 0.5, "types": ["alert", "incident"]},
        headers=headers,
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line == "":
                if current.get("event") in ("alert", "incident"):
                    out.append((current["event"], current["data"]))
                current = {}
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = orjson.loads(line[6:])
    return out


@pytest.mark.parametrize("reader", READERS)
def test_live_feed(matrix, reader):
    events = read_live(matrix, reader)
    for kind in ("alert", "incident"):
        assert {d["id"] for k, d in events if k == kind} == matrix.expected(reader, kind)
        items = matrix.by_id(kind)
        for k, d in events:
            if k == kind:
                assert d["redacted"] is (not matrix.personal(reader, items[d["id"]]))
    assert tokens_in(orjson.dumps([d for _, d in events])) == (
        matrix.expected_tokens(reader, "alert") | matrix.expected_tokens(reader, "incident")
    )


@pytest.mark.parametrize("reader", READERS)
def test_person_reports_json_and_csv(matrix, reader):
    expected = Counter()
    for item in matrix.items:
        if item.type == "incident" and matrix.personal(reader, item):
            expected[item.what] += PERSONS_PER_INCIDENT
    report = get(matrix, reader, f"{API}/reports/persons", group_by="category").json()
    assert {c["key"]["category"]: c["persons"] for c in report["cells"]} == dict(expected)
    raw = get(matrix, reader, f"{API}/reports/persons", group_by="category", format="csv").text
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert {row["category"]: int(row["persons"]) for row in rows} == dict(expected)
    assert set(expected) <= set(CATEGORIES)


@pytest.mark.parametrize("reader", READERS)
def test_map_pages(matrix, reader):
    overview = get(matrix, reader, "/maps/overview")
    assert not tokens_in(overview.text) - matrix.expected_tokens(reader, "alert")
    for incident_id, item in matrix.by_id("incident").items():
        r = matrix.client.get("/maps/incident", params={"id": incident_id}, headers=matrix.headers[reader])
        assert r.status_code == (200 if matrix.visible(reader, item) else 404)
        if r.status_code == 200:
            allowed = matrix.expected_tokens(reader, "alert") | matrix.expected_tokens(reader, "incident")
            assert not tokens_in(r.text) - allowed


def shared_reads(matrix, reader: str, after_seq: int) -> list:
    return matrix.session.execute(
        text(
            "SELECT seq, entity_type, details, agencies FROM audit_log WHERE actor = :actor AND action = 'shared.read' "
            "AND seq > :after ORDER BY seq"
        ),
        {"actor": matrix.usernames[reader], "after": after_seq},
    ).all()


def head(matrix) -> int:
    return matrix.session.execute(text("SELECT coalesce(max(seq), 0) FROM audit_log")).scalar_one()


def test_reads_of_shared_rows_are_audited_once_per_request(matrix):
    alerts, incidents = matrix.by_id("alert"), matrix.by_id("incident")
    shared_alerts = {i for i in matrix.expected("B", "alert") if alerts[i].owner != "B"}
    shared_incidents = {i for i in matrix.expected("B", "incident") if incidents[i].owner != "B"}
    personal_incidents = {i for i in shared_incidents if matrix.personal("B", incidents[i])}
    one = min(shared_incidents)
    reads = [
        (lambda: get(matrix, "B", f"{API}/alerts", limit=1000), [("alert", "alerts", shared_alerts)]),
        (
            lambda: get(matrix, "B", f"{API}/features/incidents", limit=1000),
            [("incident", "incidents", shared_incidents)],
        ),
        (lambda: get(matrix, "B", f"{API}/incidents", limit=500), [("incident", "incidents", shared_incidents)]),
        (lambda: get(matrix, "B", f"{API}/incidents/{one}"), [("incident", "incident", {one})]),
        (
            lambda: get(matrix, "B", f"{API}/ogc/collections/alerts/items", limit=1000),
            [("alert", "ogc/alerts", shared_alerts)],
        ),
        (
            lambda: get(matrix, "B", f"{API}/ogc/collections/incidents/items/{one}"),
            [("incident", "ogc/incidents", {one})],
        ),
        (
            lambda: get(matrix, "B", f"{API}/cot", types=["alert", "incident"]),
            [("alert", "cot", shared_alerts), ("incident", "cot", shared_incidents)],
        ),
        (lambda: read_live(matrix, "B"), [("alert", "live", shared_alerts), ("incident", "live", shared_incidents)]),
        (
            lambda: get(matrix, "B", f"{API}/reports/persons", group_by="category"),
            [("incident", "reports/persons", personal_incidents)],
        ),
    ]
    for read, expected in reads:
        before = head(matrix)
        read()
        entries = shared_reads(matrix, "B", before)
        got = [(e.entity_type, e.details["via"], set(e.details["ids"])) for e in entries]
        if expected[0][1] == "live":
            # One entry per poll that sent partners' rows (here every poll sends the module's rows again:
            # they were written by the test's own open transaction, which no sync token passes).
            got = [g for n, g in enumerate(got) if g not in got[:n]]
        assert got == expected
        for e in entries:
            assert e.details["count"] == len(e.details["ids"])
            assert set(e.agencies) == {matrix.agencies["A"], matrix.agencies["B"]}
    # Reading only one's own rows records nothing: A's own watch-list hits (B releases none to A).
    before = head(matrix)
    get(matrix, "A", f"{API}/alerts", limit=1000, kind="watchlist_hit")
    get(matrix, "A", f"{API}/incidents/{min(i.id for i in matrix.items if i.owner == 'A' and i.type == 'incident')}")
    assert shared_reads(matrix, "A", before) == []


def test_withdrawal_takes_effect_at_once(matrix):
    """C sees none of A's zone entries and 'other' incidents; an agreement shows them, its withdrawal
    hides them again from the next request on (same process, nothing restarted)."""
    r = matrix.client.post(
        f"{API}/sharing/agreements",
        headers=matrix.admin_headers["A"],
        json={
            "to_agency": matrix.agencies["C"],
            "alert_kinds": ["zone_entry"],
            "incident_categories": ["other"],
            "valid_from": (matrix.now - timedelta(days=1)).isoformat(),
            "purpose": "temporary release",
        },
    )
    assert r.status_code == 201, r.text
    g = Agreement(
        r.json()["id"], "A", "C", (), ("zone_entry",), ("other",), (), matrix.now - timedelta(days=1), None, False
    )
    matrix.agreements.append(g)
    try:
        released = {(i.type, i.id) for i in matrix.items if i.owner == "A" and i.what in ("zone_entry", "other")}
        alerts = {f["id"] for f in get(matrix, "C", f"{API}/alerts", limit=1000).json()["features"]}
        incidents = {i["id"] for i in get(matrix, "C", f"{API}/incidents", limit=500).json()["items"]}
        assert released <= {("alert", i) for i in alerts} | {("incident", i) for i in incidents}
        assert alerts == matrix.expected("C", "alert") and incidents == matrix.expected("C", "incident")
        one = next(i for i in matrix.items if i.owner == "A" and i.what == "zone_entry")
        assert (
            matrix.client.get(f"{API}/ogc/collections/alerts/items/{one.id}", headers=matrix.headers["C"]).status_code
            == 200
        )

        r = matrix.client.post(
            f"{API}/sharing/agreements/{g.id}/withdraw",
            headers=matrix.admin_headers["A"],
            json={"reason": "operation over"},
        )
        assert r.status_code == 200 and r.json()["active"] is False
        g.withdrawn = True
        alerts = {f["id"] for f in get(matrix, "C", f"{API}/alerts", limit=1000).json()["features"]}
        incidents = {i["id"] for i in get(matrix, "C", f"{API}/incidents", limit=500).json()["items"]}
        assert not released & ({("alert", i) for i in alerts} | {("incident", i) for i in incidents})
        assert alerts == matrix.expected("C", "alert") and incidents == matrix.expected("C", "incident")
        assert (
            matrix.client.get(f"{API}/ogc/collections/alerts/items/{one.id}", headers=matrix.headers["C"]).status_code
            == 404
        )
        assert {d["id"] for k, d in read_live(matrix, "C") if k == "alert"} == matrix.expected("C", "alert")
    finally:
        g.withdrawn = True
