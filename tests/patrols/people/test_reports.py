"""Persons in incidents and the reports on them: small cells withheld, no margins, and no cell
recoverable by subtracting published cells from a coarser report."""

from __future__ import annotations

import csv
import io
from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from core.settings import get_settings
from patrols.people.service import suppress
from tests.factories import TH_LAND

API = "/api/v1"


def incident(client, agency, category="people_smuggling") -> int:
    r = client.post(
        f"{API}/incidents",
        json={"lon": TH_LAND[0], "lat": TH_LAND[1], "title": "group", "category": category, "priority": "high"},
        headers=agency.operator_h,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def add(client, agency, incident_id, n=1, **person):
    for _ in range(n):
        r = client.post(f"{API}/incidents/{incident_id}/persons", json=person, headers=agency.operator_h)
        assert r.status_code == 201, r.text


def report(client, agency, *dims, **params) -> dict[tuple, int]:
    """The published cells (a withheld cell is not listed at all)."""
    r = client.get(f"{API}/reports/persons", params={"group_by": list(dims), **params}, headers=agency.operator_h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["group_by"] == list(dims) and "total" not in r.text
    cells = {tuple(c["key"][d] for d in dims): c["persons"] for c in body["cells"]}
    assert all(n >= body["min_cell"] for n in cells.values())
    return cells


def test_persons_are_recorded_scoped_and_audited(client, world, factory, db):
    a, b = world.agency(), world.agency("MY")
    iid = incident(client, a)
    r = client.post(
        f"{API}/incidents/{iid}/persons",
        json={"role": "victim", "sex": "female", "age_group": "12-17", "nationality": "MM"},
        headers=a.operator_h,
    )
    assert r.status_code == 201, r.text
    person = r.json()
    assert (person["role"], person["sex"], person["age_group"], person["nationality"]) == (
        "victim",
        "female",
        "12-17",
        "MM",
    )
    assert [p["id"] for p in client.get(f"{API}/incidents/{iid}/persons", headers=a.operator_h).json()] == [
        person["id"]
    ]
    assert client.get(f"{API}/incidents/{iid}/persons", headers=b.operator_h).status_code == 404
    assert (
        client.post(f"{API}/incidents/{iid}/persons", json={"role": "victim"}, headers=b.operator_h).status_code == 404
    )
    liaison = factory.headers(factory.user(a.code, role="liaison"))
    assert client.post(f"{API}/incidents/{iid}/persons", json={"role": "victim"}, headers=liaison).status_code == 403
    for bad in (
        {"role": "bystander"},
        {"role": "victim", "nationality": "mm"},
        {"role": "victim", "age_group": "40"},
        {"role": "victim", "name": "somebody"},
    ):
        assert client.post(f"{API}/incidents/{iid}/persons", json=bad, headers=a.operator_h).status_code == 422
    (entry,) = db.execute(
        text("SELECT * FROM audit_log WHERE action = 'incident.person_add' AND entity_id = :i"), {"i": str(iid)}
    ).all()
    assert entry.details["person_id"] == person["id"] and entry.details["nationality"] == "MM"


def test_one_person_cannot_be_singled_out(client, world):
    """Six Thai women and one Malaysian man: the man's cell is withheld, and so is its complement."""
    a = world.agency()
    iid = incident(client, a)
    add(client, a, iid, 6, role="victim", sex="female", age_group="18-29", nationality="TH")
    add(client, a, iid, 1, role="suspect", sex="male", age_group="30-49", nationality="MY")
    for dim in ("sex", "nationality", "role", "age_group"):
        cells = report(client, a, dim)
        # With two cells, publishing the six would give the one away against the total (7 persons in any
        # fully published report, e.g. by period): both are withheld, and neither is listed.
        assert cells == {}, (dim, cells)
    assert report(client, a, "period") == {(report_period(),): 7}
    assert report(client, a, "category") == {("people_smuggling",): 7}


def report_period() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m")


def test_cells_at_the_threshold_are_published_smaller_ones_never(client, world):
    a = world.agency()
    iid = incident(client, a)
    add(client, a, iid, 6, role="victim", sex="female", nationality="TH")
    add(client, a, iid, 7, role="victim", sex="male", nationality="TH")
    add(client, a, iid, 1, role="witness", sex="other", nationality="MM")
    cells = report(client, a, "sex")
    # 'other' (1) is withheld; the smallest other cell (female, 6) goes with it, so that the total
    # minus male gives only female + other.
    assert cells == {("male",): 7}
    fine = report(client, a, "sex", "nationality")
    assert fine[("male", "TH")] == 7 and ("other", "MM") not in fine


def test_the_threshold_is_configurable(client, world, monkeypatch):
    a = world.agency()
    iid = incident(client, a)
    add(client, a, iid, 5, role="victim")
    add(client, a, iid, 3, role="suspect")
    add(client, a, iid, 1, role="witness")
    # At 5: witness and suspect are withheld, together only 4, so victim goes too.
    assert report(client, a, "role") == {}
    monkeypatch.setenv("BW_REPORT_MIN_CELL", "2")
    get_settings.cache_clear()
    # At 2: witness is withheld with its complement, suspect (3); victim is published.
    assert report(client, a, "role") == {("victim",): 5}
    r = client.get(f"{API}/reports/persons", params={"group_by": "role"}, headers=a.operator_h).json()
    assert r["min_cell"] == 2


def test_csv_has_the_published_cells_and_no_total_row(client, world):
    a, b = world.agency(), world.agency("MY")
    iid = incident(client, a)
    for role, sex, n in (
        ("victim", "female", 6),
        ("victim", "male", 7),
        ("witness", "female", 5),
        ("witness", "male", 8),
        ("suspect", "female", 9),
        ("suspect", "male", 1),
    ):
        add(client, a, iid, n, role=role, sex=sex)
    add(client, b, incident(client, b), 9, role="witness", sex="female")  # another agency's: not counted
    as_json = report(client, a, "role", "sex")
    assert ("suspect", "male") not in as_json and as_json  # the one suspect is withheld, not everything
    r = client.get(
        f"{API}/reports/persons", params={"group_by": ["role", "sex"], "format": "csv"}, headers=a.operator_h
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ["role", "sex", "persons"]
    assert {(x["role"], x["sex"]): int(x["persons"]) for x in rows} == as_json
    assert not any("total" in v.lower() for x in rows for v in x.values())
    assert as_json.get(("witness", "female"), 5) == 5  # the other agency's nine are not in it


def test_bad_report_requests_are_refused(client, world, factory):
    a = world.agency()
    for params in (
        {},
        {"group_by": "name"},
        {"group_by": ["sex"] * 5},
        {"group_by": "sex", "period": "week"},
        {"group_by": "sex", "format": "xlsx"},
        {"group_by": "sex", "start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
    ):
        assert client.get(f"{API}/reports/persons", params=params, headers=a.operator_h).status_code == 422, params
    unit = factory.headers(factory.user(a.code, role="patrol_unit"))
    assert client.get(f"{API}/reports/persons", params={"group_by": "sex"}, headers=unit).status_code == 403
    assert client.get(f"{API}/reports/persons", params={"group_by": "sex"}).status_code == 401


def test_segment_and_period_dimensions(client, world):
    a = world.agency()
    add(client, a, incident(client, a), 5, role="victim", sex="female")
    cells = report(client, a, "period", "segment")
    ((period, segment),) = cells
    assert period == report_period() and segment != "none" and cells[(period, segment)] == 5


def _attack(cells: dict[tuple, int], hidden: set[tuple], domains: list[str], threshold: int) -> list[tuple]:
    """Small cells an attacker pins down: in a row (all dimensions fixed but one) whose sum the coarser
    report publishes, a single combination missing from the published cells holds the difference."""
    pinned = []
    for d, domain in enumerate(domains):
        rows = defaultdict(list)
        for key in cells:
            rows[key[:d] + key[d + 1 :]].append(key)
        for rest, keys in rows.items():
            if sum(cells[k] for k in keys) < threshold:
                continue  # the coarser cell is withheld itself
            shown = {k[d] for k in keys if k not in hidden}
            missing = [rest[:d] + (v,) + rest[d:] for v in domain if v not in shown]
            if len(missing) == 1 and 0 < cells.get(missing[0], 0) < threshold:
                pinned.append(missing[0])
    return pinned


@hsettings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.tuples(st.sampled_from("abcd"), st.sampled_from("xyz")), st.integers(1, 12), min_size=1),
    st.integers(2, 6),
)
def test_no_suppressed_cell_is_recoverable_by_subtraction(cells, threshold):
    hidden = suppress(cells, 2, threshold)
    assert {k for k, n in cells.items() if n < threshold} <= hidden
    assert _attack(cells, hidden, ["abcd", "xyz"], threshold) == []
    # One dimension: the rows are the whole table, whose sum any other full report gives away.
    flat = defaultdict(int)
    for (first, _), n in cells.items():
        flat[(first,)] += n
    assert _attack(dict(flat), suppress(dict(flat), 1, threshold), ["abcd"], threshold) == []


def test_the_attack_would_work_without_complementary_suppression():
    cells = {("a",): 1, ("b",): 9, ("c",): 8}
    primary_only = {k for k, n in cells.items() if n < 5}
    assert _attack(cells, primary_only, ["abc"], 5) == [("a",)]
    assert _attack(cells, suppress(cells, 1, 5), ["abc"], 5) == []


@pytest.fixture(autouse=True)
def _fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
