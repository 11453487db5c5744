"""What the people domain does: persons involved in incidents (role, sex, age group, nationality;
nothing that names them), and reports that count them without singling anyone out. Callers own
the transaction.

Disclosure control of the reports (threshold ``t``, ``BW_REPORT_MIN_CELL``, default 5):

* a cell counting fewer than ``t`` persons is suppressed (primary suppression);
* a suppressed cell is left out of the report, like a cell of nobody: a reader cannot tell
  which of the missing combinations hold anyone (listing them, even without a number, would
  say that each holds at least one person, and k such cells summing to k are k single persons);
* no report carries totals, subtotals or margins;
* but every report is a margin of a finer one: the cells of a report grouped by D minus one
  dimension are the sums of the "rows" of the report grouped by D (and one dimension's report
  sums to the grand total, which any other fully published report gives away). So in every row
  along every dimension, suppressed cells never stand alone: while a row holds suppressed cells
  whose number is below two, or whose sum is below ``t`` or equal to their number (then each
  would be 1), its smallest published cell is suppressed too (complementary suppression),
  repeated until nothing changes. Subtracting the published cells from the coarser report then
  yields only the sum of two or more cells, of at least ``t`` persons, that fits more than one
  split. (This guards against subtraction along one dimension at a time; it is not an audit
  against every linear combination of many reports.)
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from audit import service as audit
from core.errors import InvalidInput
from core.permissions import DISPATCHERS, require_role
from core.security import Principal
from patrols.errors import IncidentNotFound
from patrols.incidents import get_incident
from patrols.models import Incident
from patrols.people import schemas
from patrols.people.models import IncidentPerson
from sharing.service import incident_personal, record_shared_read

PERIOD_FORMATS = {"month": "YYYY-MM", "quarter": 'YYYY-"Q"Q', "year": "YYYY"}
# A segment is the incident's nearest border segment within this many degrees (about 55 km), else none.
SEGMENT_RADIUS_DEG = 0.5
DIMENSIONS = {
    "period": "to_char(date_trunc(:period, i.created_at AT TIME ZONE 'UTC'), :period_format)",
    "category": "i.category",
    "segment": "coalesce(seg.name, 'none')",
    "role": "p.role",
    "sex": "p.sex",
    "age_group": "p.age_group",
    "nationality": "coalesce(p.nationality, 'unknown')",
}
MAX_DIMENSIONS = 4


def _out(p: IncidentPerson) -> schemas.PersonOut:
    return schemas.PersonOut(
        id=p.id,
        incident_id=p.incident_id,
        role=p.role,
        sex=p.sex,
        age_group=p.age_group,
        nationality=p.nationality,
        created_by=p.created_by,
        created_at=p.created_at,
    )


def add_person(
    *, session: Session, principal: Principal, incident_id: int, person_in: schemas.PersonCreate
) -> schemas.PersonOut:
    """Record a person involved in an incident of the caller's agency (audited)."""
    require_role(principal, DISPATCHERS, "record persons in incidents")
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None or incident.agency_code != principal.agency_code:
        raise IncidentNotFound(f"incident {incident_id} does not exist or is not visible to {principal.agency_code}")
    person = IncidentPerson(
        incident_id=incident.id,
        agency_code=incident.agency_code,
        role=person_in.role,
        sex=person_in.sex,
        age_group=person_in.age_group,
        nationality=person_in.nationality,
        created_by=principal.username,
    )
    session.add(person)
    session.flush()
    session.refresh(person)
    audit.record(
        session=session,
        actor=principal.username,
        action="incident.person_add",
        entity_type="incident",
        entity_id=incident.id,
        agencies=[incident.agency_code],
        details={
            "person_id": person.id,
            "role": person.role,
            "sex": person.sex,
            "age_group": person.age_group,
            "nationality": person.nationality,
        },
    )
    return _out(person)


def list_persons(*, session: Session, principal: Principal, incident_id: int) -> list[schemas.PersonOut]:
    """The persons of an incident the caller may see (the same scope as the incident); none of a
    partner's incident shared without personal data."""
    incident = get_incident(session=session, principal=principal, incident_id=incident_id)
    if incident.redacted:
        return []
    rows = (
        session.query(IncidentPerson)
        .filter(IncidentPerson.incident_id == incident_id)
        .order_by(IncidentPerson.id)
        .all()
    )
    return [_out(p) for p in rows]


def suppress(cells: dict[tuple, int], dims: int, threshold: int) -> set[tuple]:
    """The keys to withhold: cells below ``threshold``, and complementary cells (module docstring)."""
    hidden = {k for k, n in cells.items() if n < threshold}
    changed = bool(hidden)
    while changed:
        changed = False
        for d in range(dims):
            rows: dict[tuple, list[tuple]] = defaultdict(list)
            for key in cells:
                rows[key[:d] + key[d + 1 :]].append(key)
            for keys in rows.values():
                held = [k for k in keys if k in hidden]
                if not held:
                    continue
                total = sum(cells[k] for k in held)
                # Two or more, together at least the threshold and more than one each (else all are 1).
                if len(held) >= 2 and total >= max(threshold, len(held) + 1):
                    continue
                shown = sorted((k for k in keys if k not in hidden), key=lambda k: (cells[k], k))
                if shown:
                    hidden.add(shown[0])
                    changed = True
    return hidden


def person_report(
    *,
    session: Session,
    principal: Principal,
    group_by: Sequence[str],
    period: str = "month",
    start: datetime | None = None,
    end: datetime | None = None,
    threshold: int = 5,
) -> schemas.PersonReport:
    """Persons in the incidents whose personal data the caller's agency may read (its own, and partners'
    shared with personal data) counted by ``group_by``, with small cells withheld."""
    require_role(principal, DISPATCHERS, "read person reports")
    dims = list(dict.fromkeys(group_by))
    if not dims or len(dims) > MAX_DIMENSIONS or any(d not in DIMENSIONS for d in dims):
        raise InvalidInput(f"group_by takes 1 to {MAX_DIMENSIONS} of {', '.join(DIMENSIONS)}", parameter="group_by")
    if period not in PERIOD_FORMATS:
        raise InvalidInput(f"period must be one of {', '.join(PERIOD_FORMATS)}", parameter="period")
    if start and end and start >= end:
        raise InvalidInput("start must be before end", parameter="start")
    threshold = max(1, threshold)
    columns = ", ".join(f"{DIMENSIONS[d]} AS d{i}" for i, d in enumerate(dims))
    segment_join = ""
    if "segment" in dims:
        segment_join = f"""LEFT JOIN LATERAL (
            SELECT s.name FROM border_segments s WHERE ST_DWithin(s.geom, i.geom, {SEGMENT_RADIUS_DEG})
            ORDER BY s.geom <-> i.geom LIMIT 1) seg ON true"""
    # Persons of the incidents whose personal data the caller may read: its own agency's, and
    # partners' shared with personal data (a redacted incident's persons are not counted).
    rows = session.execute(
        text(
            f"""SELECT {columns}, count(*) AS n,
                   array_agg(DISTINCT i.agency_code || ' ' || i.id) FILTER (WHERE i.agency_code <> :agency)
                     AS shared
            FROM incident_persons p JOIN incidents i ON i.id = p.incident_id {segment_join}
            WHERE {incident_personal("i")} AND p.agency_code = i.agency_code
              AND (CAST(:start AS timestamptz) IS NULL OR i.created_at >= :start)
              AND (CAST(:end AS timestamptz) IS NULL OR i.created_at <= :end)
            GROUP BY {", ".join(str(i + 1) for i in range(len(dims)))}"""
        ),
        {
            "agency": principal.agency_code,
            "start": start,
            "end": end,
            "period": period,
            "period_format": PERIOD_FORMATS[period],
        },
    ).all()
    shared = {tuple(item.split(" ")) for r in rows for item in (r.shared or [])}
    record_shared_read(
        session=session,
        principal=principal,
        entity_type="incident",
        rows=[(int(i), agency) for agency, i in shared],
        via="reports/persons",
    )
    cells = {tuple(r[: len(dims)]): r.n for r in rows}
    hidden = suppress(cells, len(dims), threshold)
    out = [
        schemas.ReportCell(key=dict(zip(dims, key, strict=True)), persons=n)
        for key, n in sorted(cells.items())
        if key not in hidden
    ]
    return schemas.PersonReport(group_by=dims, period=period, min_cell=threshold, withheld=bool(hidden), cells=out)


def report_csv(report: schemas.PersonReport) -> str:
    """The report as CSV: one row per published cell; no total row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*report.group_by, "persons"])
    for cell in report.cells:
        writer.writerow([*(cell.key[d] for d in report.group_by), cell.persons])
    return buffer.getvalue()
