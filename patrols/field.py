"""What a patrol unit's device may read beyond its role's table entry (``core.permissions``): its
own unit, that unit's taskings and their incidents, evidence of those incidents or in its hands,
and the picture within ``FIELD_RADIUS_M`` of where it is and where it is sent.

The checks bind the caller's username and agency; a device whose user reports for no unit has
nothing of its own and no picture."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.permissions import (
    FIELD_RADIUS_M,
    NEARBY,
    OWN_EVIDENCE,
    OWN_TASKING,
    OWN_UNIT,
    TASKED_INCIDENT,
    RoleNotAllowed,
)
from core.security import Principal


class OutsideFieldScope(RoleNotAllowed):
    code = "outside_field_scope"


# The caller's own units (binds :field_user, :agency).
_OWN_UNITS = "SELECT fu.id FROM patrol_units fu WHERE fu.username = :field_user AND fu.agency_code = :agency"
_TASKED = f"SELECT ft.incident_id FROM taskings ft WHERE ft.unit_id IN ({_OWN_UNITS})"

_CHECKS: Mapping[str, tuple[str, str, str]] = {
    # scope: (path parameter, condition on :id, what the refusal names)
    OWN_UNIT: ("unit_id", f":id IN ({_OWN_UNITS})", "its own unit"),
    OWN_TASKING: (
        "tasking_id",
        f"EXISTS (SELECT 1 FROM taskings t WHERE t.id = :id AND t.unit_id IN ({_OWN_UNITS}))",
        "its own unit's taskings",
    ),
    TASKED_INCIDENT: ("incident_id", f":id IN ({_TASKED})", "incidents its unit is tasked to"),
    OWN_EVIDENCE: (
        "item_id",
        f"""EXISTS (SELECT 1 FROM evidence_items e WHERE e.id = :id
              AND (e.incident_id IN ({_TASKED}) OR e.custodian_unit_id IN ({_OWN_UNITS})
                   OR e.pending_unit_id IN ({_OWN_UNITS})))""",
        "evidence of incidents its unit is tasked to or in its unit's hands",
    ),
}


def check_path(session: Session, principal: Principal, scope: str, path_params: Mapping[str, str]) -> None:
    """Refuse (403, ``outside_field_scope``) a path naming something outside ``scope`` for the caller.
    NEARBY and lists are narrowed where their rows are read (:func:`nearby`, ``units.list_units``)."""
    if scope == NEARBY or scope not in _CHECKS:
        return
    param, condition, what = _CHECKS[scope]
    if param not in path_params:
        return
    raw = path_params[param]
    allowed = raw.isdigit() and 0 < int(raw) < 2**62
    if allowed:
        allowed = bool(
            session.execute(
                text(f"SELECT {condition}"),
                {"id": int(raw), "field_user": principal.username, "agency": principal.agency_code},
            ).scalar()
        )
    if not allowed:
        raise OutsideFieldScope(
            f"a {principal.role} device reads only {what}; {param} {raw} is not one of them",
            **{param: raw},
        )


def nearby(geometry: str) -> str:
    """WHERE condition: ``geometry`` lies within the field radius (``:field_radius_m``) of one of the
    caller's units (``:field_user``) or of the incident of one of its open taskings."""
    return f"""EXISTS (
        SELECT 1 FROM patrol_units fu
        LEFT JOIN taskings ft ON ft.unit_id = fu.id AND ft.status IN ('assigned', 'accepted')
        LEFT JOIN incidents fi ON fi.id = ft.incident_id
        WHERE fu.username = :field_user AND fu.agency_code = :agency
          AND (ST_DWithin(fu.geom::geography, ({geometry})::geography, :field_radius_m)
               OR ST_DWithin(fi.geom::geography, ({geometry})::geography, :field_radius_m)))"""


def nearby_params(principal: Principal) -> dict:
    return {"field_user": principal.username, "field_radius_m": FIELD_RADIUS_M}


OWN_UNITS_SQL = "u.username = :field_user"
