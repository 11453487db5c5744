"""The patrol domain's errors, shared by its modules: each carries its meaning and a code
(api/errors.py maps them to HTTP)."""

from __future__ import annotations

from core.errors import Conflict, NotFound


class UnitNotFound(NotFound):
    code = "unit_not_found"


class IncidentNotFound(NotFound):
    code = "incident_not_found"


class TaskingNotFound(NotFound):
    code = "tasking_not_found"


class JointPatrolNotFound(NotFound):
    code = "joint_patrol_not_found"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class UnitNotEligible(Conflict):
    code = "unit_not_eligible"
