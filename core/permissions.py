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
