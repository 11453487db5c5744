"""Every role set of the product, and the check that a caller holds one of them.

A role is what a user may do within their own agency; what they may see of other agencies is
decided by sharing agreements (``sharing``). Each set below names the people who may do one kind
of thing, so a change of policy is one line here, seen by every package that applies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.errors import NotAuthorised

if TYPE_CHECKING:
    from core.security import Principal

ROLES = ("admin", "supervisor", "operator", "patrol_unit", "liaison")

# Agreements, unit credentials, evidence release, the audit trail: an agency's leadership.
MANAGERS = ("admin", "supervisor")
# Incidents, taskings, liaison pushes, watch-list entries: the control room.
DISPATCHERS = ("admin", "supervisor", "operator")
# Evidence is registered by the control room and by patrol unit devices in the field.
EVIDENCE_REGISTRARS = (*DISPATCHERS, "patrol_unit")
# Who reads the audit trail of their agency.
AUDIT_READERS = MANAGERS
# Who reads a partner's liaison pushes: everyone of the receiving agency but patrol unit devices.
LIAISON_READERS = (*DISPATCHERS, "liaison")
# Who edits the watch-list.
WATCHLIST_EDITORS = DISPATCHERS
# Who disables, enables and resets the passwords of their agency's users and withdraws or rotates
# its gateways' broker credentials.
ACCOUNT_ADMINS = ("admin",)


class RoleNotAllowed(NotAuthorised):
    code = "role_not_allowed"


def require_role(principal: Principal, roles: Sequence[str], action: str) -> None:
    """Refuse (``RoleNotAllowed``, 403) a caller whose role is not in ``roles``; ``action`` says what was refused."""
    if principal.role not in roles:
        raise RoleNotAllowed(f"role {principal.role} may not {action} (needs one of {', '.join(roles)})")


# -- who may call what: every API route, by role ------------------------------------------------
# A route is named by its method and path template as the OpenAPI document has it. For each role
# allowed, a *scope* says how much of what the route serves that role gets:
#
#   AGENCY           everything of the caller's agency (and what agreements release to it)
#   OWN_UNIT         the unit in the path (or, for a list, the units) the caller's device reports for
#   OWN_TASKING      a tasking of the caller's own unit
#   TASKED_INCIDENT  an incident the caller's own unit has (or had) a tasking for
#   OWN_EVIDENCE     an evidence item of such an incident, or one the caller's unit holds or is offered
#   NEARBY           rows within FIELD_RADIUS_M of the caller's unit's last position or of the
#                    incidents of its open taskings
#
# A role not named for a route is refused (403, ``role_not_allowed``); a route missing from the table
# is refused to everyone (``tests/api/test_role_matrix.py`` fails first). The table is applied to every
# request by one dependency of the ``/api/v1`` router (``api.deps.authorise``); a scope other than
# AGENCY is checked there for the route's path parameters (``patrols.field``), and applied to the rows of
# a list by the feature layers (NEARBY) and the unit list (OWN_UNIT). Services keep their own role
# checks as a second line.
PUBLIC = "public"
AGENCY = "agency"
OWN_UNIT = "own_unit"
OWN_TASKING = "own_tasking"
TASKED_INCIDENT = "tasked_incident"
OWN_EVIDENCE = "own_evidence"
NEARBY = "nearby"

# Roles whose device reads the picture around it, not the agency's (NEARBY on every agency layer).
FIELD_ROLES = ("patrol_unit",)
# The radius of a patrol unit's picture: alerts, detections, units and incidents around it.
FIELD_RADIUS_M = 10_000.0

STAFF = DISPATCHERS  # the control room: reads the agency's whole store
Grant = dict[str, str]


def _grant(roles: Sequence[str], **narrowed: str) -> Grant:
    """``roles`` with the whole agency's scope, and the roles in ``narrowed`` with theirs."""
    return {**dict.fromkeys(roles, AGENCY), **narrowed}


_ANYONE = _grant(ROLES)
_CONTROL_ROOM = _grant(STAFF)
_MANAGERS = _grant(MANAGERS)
_UNIT = _grant(STAFF, patrol_unit=OWN_UNIT)
_UNIT_WRITE = _grant(DISPATCHERS, patrol_unit=OWN_UNIT)
_TASKED = _grant(STAFF, patrol_unit=TASKED_INCIDENT)
_TASKING = _grant(STAFF, patrol_unit=OWN_TASKING)
_EVIDENCE = _grant(STAFF, patrol_unit=OWN_EVIDENCE)
_PICTURE = _grant(STAFF, patrol_unit=NEARBY)
_WITH_LIAISON = _grant((*STAFF, "liaison"))

V1 = "/api/v1"

ROUTE_ACCESS: dict[tuple[str, str], Grant] = {
    # sign-in and the caller's own account
    ("POST", f"{V1}/auth/token"): {PUBLIC: PUBLIC},
    ("POST", f"{V1}/auth/logout"): _ANYONE,
    ("GET", f"{V1}/auth/me"): _ANYONE,
    # shared geography: no personal or operational data
    ("GET", f"{V1}/states"): _ANYONE,
    ("GET", f"{V1}/segments"): _ANYONE,
    ("GET", f"{V1}/zones"): _ANYONE,
    # sensor placement, raw detections, alerts
    ("GET", f"{V1}/sensors"): _CONTROL_ROOM,
    ("GET", f"{V1}/detections"): _PICTURE,
    ("GET", f"{V1}/alerts"): _PICTURE,
    # map layers of patrol coordination
    ("GET", f"{V1}/features/units"): _PICTURE,
    ("GET", f"{V1}/features/incidents"): _PICTURE,
    ("GET", f"{V1}/features/joint-patrol-routes"): _WITH_LIAISON,
    ("GET", f"{V1}/features/handover-points"): _WITH_LIAISON,
    ("GET", f"{V1}/features/segment-coverage"): _CONTROL_ROOM,
    # the watch-list: the liaison hotline answers partners' "is this plate wanted?"
    ("GET", f"{V1}/watchlists"): _WITH_LIAISON,
    ("POST", f"{V1}/watchlists"): _grant(WATCHLIST_EDITORS),
    ("GET", f"{V1}/watchlists/{{entry_id}}"): _WITH_LIAISON,
    ("PATCH", f"{V1}/watchlists/{{entry_id}}"): _grant(WATCHLIST_EDITORS),
    ("DELETE", f"{V1}/watchlists/{{entry_id}}"): _grant(WATCHLIST_EDITORS),
    # units
    ("POST", f"{V1}/units"): _MANAGERS,
    ("GET", f"{V1}/units"): _UNIT,
    ("GET", f"{V1}/units/{{unit_id}}"): _UNIT,
    ("PUT", f"{V1}/units/{{unit_id}}/status"): _UNIT_WRITE,
    ("POST", f"{V1}/units/{{unit_id}}/positions"): _UNIT_WRITE,
    ("GET", f"{V1}/units/{{unit_id}}/positions"): _UNIT,
    ("PUT", f"{V1}/units/{{unit_id}}/credentials"): _MANAGERS,
    ("DELETE", f"{V1}/units/{{unit_id}}/credentials"): _MANAGERS,
    ("GET", f"{V1}/units/{{unit_id}}/taskings"): _UNIT,
    # incidents and dispatch
    ("POST", f"{V1}/incidents"): _grant(DISPATCHERS),
    ("GET", f"{V1}/incidents"): _CONTROL_ROOM,
    ("GET", f"{V1}/incidents/{{incident_id}}"): _TASKED,
    ("GET", f"{V1}/incidents/{{incident_id}}/timeline"): _TASKED,
    ("POST", f"{V1}/incidents/{{incident_id}}/notes"): _grant(DISPATCHERS),
    ("PUT", f"{V1}/incidents/{{incident_id}}/status"): _grant(DISPATCHERS),
    ("GET", f"{V1}/incidents/{{incident_id}}/recommendation"): _grant(DISPATCHERS),
    ("POST", f"{V1}/incidents/{{incident_id}}/taskings"): _grant(DISPATCHERS),
    ("GET", f"{V1}/incidents/{{incident_id}}/taskings"): _TASKED,
    ("GET", f"{V1}/taskings/{{tasking_id}}"): _TASKING,
    ("POST", f"{V1}/taskings/{{tasking_id}}/accept"): _grant(DISPATCHERS, patrol_unit=OWN_TASKING),
    ("POST", f"{V1}/taskings/{{tasking_id}}/decline"): _grant(DISPATCHERS, patrol_unit=OWN_TASKING),
    # joint patrols (the liaison hotline coordinates them with partners) and coverage
    ("POST", f"{V1}/joint-patrols"): _MANAGERS,
    ("GET", f"{V1}/joint-patrols"): _WITH_LIAISON,
    ("GET", f"{V1}/joint-patrols/{{patrol_id}}"): _WITH_LIAISON,
    ("GET", f"{V1}/coverage"): _CONTROL_ROOM,
    ("GET", f"{V1}/coverage/gaps"): _CONTROL_ROOM,
    # whole-picture feeds: the control room's screens and TAK clients
    ("GET", f"{V1}/live"): _CONTROL_ROOM,
    ("GET", f"{V1}/cot"): _CONTROL_ROOM,
    ("GET", f"{V1}/ogc"): _CONTROL_ROOM,
    ("GET", f"{V1}/ogc/conformance"): _CONTROL_ROOM,
    ("GET", f"{V1}/ogc/collections"): _CONTROL_ROOM,
    ("GET", f"{V1}/ogc/collections/{{collection_id}}"): _CONTROL_ROOM,
    ("GET", f"{V1}/ogc/collections/{{collection_id}}/items"): _CONTROL_ROOM,
    ("GET", f"{V1}/ogc/collections/{{collection_id}}/items/{{feature_id}}"): _CONTROL_ROOM,
    # integrations and the audit trail
    ("GET", f"{V1}/webhooks"): _MANAGERS,
    ("POST", f"{V1}/webhooks"): _MANAGERS,
    ("GET", f"{V1}/webhooks/{{webhook_id}}"): _MANAGERS,
    ("DELETE", f"{V1}/webhooks/{{webhook_id}}"): _MANAGERS,
    ("GET", f"{V1}/webhooks/{{webhook_id}}/deliveries"): _MANAGERS,
    ("GET", f"{V1}/audit"): _grant(AUDIT_READERS),
    # the liaison hotline
    ("POST", f"{V1}/liaison/pushes"): _grant(DISPATCHERS),
    ("GET", f"{V1}/liaison/inbox"): _grant(LIAISON_READERS),
    ("GET", f"{V1}/liaison/inbox/{{push_id}}"): _grant(LIAISON_READERS),
    ("GET", f"{V1}/liaison/outbox"): _grant(DISPATCHERS),
    # persons involved in incidents: the control room only
    ("POST", f"{V1}/incidents/{{incident_id}}/persons"): _grant(DISPATCHERS),
    ("GET", f"{V1}/incidents/{{incident_id}}/persons"): _CONTROL_ROOM,
    ("GET", f"{V1}/reports/persons"): _CONTROL_ROOM,
    # evidence: the control room, and the field unit of the incident or holding the item
    ("GET", f"{V1}/incidents/{{incident_id}}/evidence"): _TASKED,
    ("POST", f"{V1}/incidents/{{incident_id}}/evidence"): _grant(DISPATCHERS, patrol_unit=TASKED_INCIDENT),
    ("GET", f"{V1}/evidence/{{item_id}}"): _EVIDENCE,
    ("GET", f"{V1}/evidence/{{item_id}}/chain"): _EVIDENCE,
    ("POST", f"{V1}/evidence/{{item_id}}/handover"): _grant(MANAGERS, patrol_unit=OWN_EVIDENCE),
    ("POST", f"{V1}/evidence/{{item_id}}/accept"): _grant(DISPATCHERS, patrol_unit=OWN_EVIDENCE),
    ("POST", f"{V1}/evidence/{{item_id}}/decline"): _grant(DISPATCHERS, patrol_unit=OWN_EVIDENCE),
    ("POST", f"{V1}/evidence/{{item_id}}/events"): _grant(DISPATCHERS, patrol_unit=OWN_EVIDENCE),
    ("PUT", f"{V1}/evidence/{{item_id}}/content"): _grant(DISPATCHERS, patrol_unit=OWN_EVIDENCE),
    ("GET", f"{V1}/evidence/{{item_id}}/content/verify"): _EVIDENCE,
    # sharing agreements: made and withdrawn by leadership, read by the control room and the hotline
    ("POST", f"{V1}/sharing/agreements"): _MANAGERS,
    ("GET", f"{V1}/sharing/agreements"): _WITH_LIAISON,
    ("GET", f"{V1}/sharing/agreements/{{agreement_id}}"): _WITH_LIAISON,
    ("POST", f"{V1}/sharing/agreements/{{agreement_id}}/withdraw"): _MANAGERS,
    # the agency's accounts and gateway credentials: its admins only
    ("POST", f"{V1}/admin/users/{{username}}/disable"): _grant(ACCOUNT_ADMINS),
    ("POST", f"{V1}/admin/users/{{username}}/enable"): _grant(ACCOUNT_ADMINS),
    ("POST", f"{V1}/admin/users/{{username}}/password"): _grant(ACCOUNT_ADMINS),
    ("POST", f"{V1}/admin/gateways/{{gateway_id}}/credentials"): _grant(ACCOUNT_ADMINS),
    ("DELETE", f"{V1}/admin/gateways/{{gateway_id}}/credentials"): _grant(ACCOUNT_ADMINS),
}


# The browser map pages (api.maps, outside the OpenAPI document): the control room's screens. What
# they show is read through the same services and layers, under the same scopes; a patrol unit's
# phone and the liaison hotline have the API entries above instead.
MAP_PAGE_READERS = STAFF


class NoAccessRule(NotAuthorised):
    code = "role_not_allowed"


def is_public(method: str, path: str) -> bool:
    """The route needs no caller (signing in)."""
    return PUBLIC in ROUTE_ACCESS.get((method, path), {})


def route_scope(method: str, path: str, role: str | None) -> str:
    """The scope ``role`` has on the route (``PUBLIC`` for a route that needs no caller); refuses
    (403, with the reason) a role the table does not name and a route it does not list."""
    grant = ROUTE_ACCESS.get((method, path))
    if grant is None:
        raise NoAccessRule(f"{method} {path} has no entry in the access table; refused to every role")
    if PUBLIC in grant:
        return PUBLIC
    if role not in grant:
        allowed = ", ".join(r for r in ROLES if r in grant)
        raise RoleNotAllowed(f"role {role} may not call {method} {path} (needs one of {allowed})")
    return grant[role]
