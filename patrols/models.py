"""Patrol units and their positions, incidents with their timeline, taskings, joint patrols,
and the stored responses that make creating requests idempotent.

``change_xid`` (a trigger keeps it at the id of the transaction that last wrote the row) is
what ``since=`` delta sync and the live feed compare against a snapshot's xmin: a transaction
still running when a client synced cannot be missed, whatever its timestamps say.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    FetchedValue,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, REAL
from sqlalchemy.orm import Mapped, mapped_column

import alerts.models  # noqa: F401  (the alerts incidents link to)
import geo.models  # noqa: F401  (the zones joint patrols cover)
from core.models import Base
from core.vocabulary import INCIDENT_CATEGORIES

UNIT_KINDS = ("land", "maritime", "air")
UNIT_STATUSES = ("available", "en_route", "on_scene", "returning", "off_duty")
INCIDENT_PRIORITIES = ("low", "medium", "high", "critical")
INCIDENT_STATUSES = ("new", "assigned", "en_route", "on_scene", "resolved", "false_alarm", "closed")
INCIDENT_DOMAINS = ("land", "maritime")
TASKING_STATUSES = ("assigned", "accepted", "declined", "completed", "cancelled")
CURRENT_XID = "(pg_current_xact_id()::text)::bigint"
TIMELINE_KINDS = ("created", "alert_linked", "note", "status", "tasking")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN {values!r}"


class PatrolUnit(Base):
    """A land vehicle, foot team, boat or aircraft of one agency; ``geom`` is its last known position."""

    __tablename__ = "patrol_units"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    callsign: Mapped[str] = mapped_column(String(32), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    capabilities: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False, server_default="{}")
    cruising_speed_kmh: Mapped[float] = mapped_column(REAL, nullable=False)
    home_base = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    position_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="available")
    status_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    # The patrol_unit user the unit's device signs in as (its own credential), if any.
    username: Mapped[str | None] = mapped_column(ForeignKey("users.username", ondelete="SET NULL"), unique=True)
    # Mosquitto password-file hash of the unit's broker credential (user ``unit.<id>``).
    mqtt_password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    version: Mapped[int] = mapped_column(nullable=False, server_default="1", server_onupdate=FetchedValue())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, server_onupdate=FetchedValue()
    )
    change_xid: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=text(CURRENT_XID), index=True, server_onupdate=FetchedValue()
    )

    __table_args__ = (
        UniqueConstraint("agency_code", "callsign", name="uq_patrol_units_callsign"),
        CheckConstraint(_in("kind", UNIT_KINDS), name="unit_kind_known"),
        CheckConstraint(_in("status", UNIT_STATUSES), name="unit_status_known"),
        CheckConstraint("cruising_speed_kmh > 0 AND cruising_speed_kmh <= 2000", name="unit_speed_range"),
        Index("ix_patrol_units_geom", "geom", postgresql_using="gist"),
        # The recommendation's nearest-neighbour scan reads only units that can be sent.
        Index(
            "ix_patrol_units_available_geom",
            "geom",
            postgresql_using="gist",
            postgresql_where=text("status = 'available'"),
        ),
        Index("ix_patrol_units_agency", "agency_code", "id"),
    )


class UnitPosition(Base):
    """One position report; ``client_id`` is made by the device so a resent report is stored once."""

    __tablename__ = "unit_positions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("patrol_units.id", ondelete="CASCADE"), nullable=False)
    agency_code: Mapped[str] = mapped_column(String(32), nullable=False)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    speed_kmh: Mapped[float | None] = mapped_column(Double)
    heading_deg: Mapped[float | None] = mapped_column(Double)
    accuracy_m: Mapped[float | None] = mapped_column(Double)

    __table_args__ = (
        UniqueConstraint("unit_id", "client_id", name="uq_unit_positions_client"),
        Index("ix_unit_positions_unit_observed", "unit_id", "observed_at"),
        Index("ix_unit_positions_geom", "geom", postgresql_using="gist"),
        Index("ix_unit_positions_agency_observed", "agency_code", "observed_at"),
    )


class Incident(Base):
    """What operators work on: gathers alerts, has a place, a category, a priority and a status."""

    __tablename__ = "incidents"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    category: Mapped[str] = mapped_column(String(32), nullable=False)
    priority: Mapped[str] = mapped_column(String(8), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="new")
    # Land if the place lies inside a state's land area, maritime otherwise.
    domain: Mapped[str] = mapped_column(String(16), nullable=False)
    # The state whose land area or territorial sea holds the place (none on the high seas).
    state: Mapped[str | None] = mapped_column(String(2))
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(nullable=False, server_default="1", server_onupdate=FetchedValue())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, server_onupdate=FetchedValue()
    )
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    change_xid: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=text(CURRENT_XID), index=True, server_onupdate=FetchedValue()
    )

    __table_args__ = (
        CheckConstraint(_in("category", INCIDENT_CATEGORIES), name="incident_category_known"),
        CheckConstraint(_in("priority", INCIDENT_PRIORITIES), name="incident_priority_known"),
        CheckConstraint(_in("status", INCIDENT_STATUSES), name="incident_status_known"),
        CheckConstraint(_in("domain", INCIDENT_DOMAINS), name="incident_domain_known"),
        Index("ix_incidents_geom", "geom", postgresql_using="gist"),
        Index("ix_incidents_agency", "agency_code", "id"),
    )


class IncidentAlert(Base):
    """An alert promoted into an incident (an alert belongs to at most one incident)."""

    __tablename__ = "incident_alerts"

    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False, index=True)


class IncidentEvent(Base):
    """One entry of an incident's timeline: who did what, when."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp(), nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    status_from: Mapped[str | None] = mapped_column(String(16))
    status_to: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")

    __table_args__ = (
        CheckConstraint(_in("kind", TIMELINE_KINDS), name="incident_event_kind_known"),
        Index("ix_incident_events_incident", "incident_id", "id"),
    )


class Tasking(Base):
    """A unit sent to an incident; a unit has at most one open (assigned or accepted) tasking."""

    __tablename__ = "taskings"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False)
    unit_id: Mapped[int] = mapped_column(ForeignKey("patrol_units.id", ondelete="CASCADE"), nullable=False)
    # The tasking agency (the incident's) and the unit's, which differ in a joint sector.
    agency_code: Mapped[str] = mapped_column(String(32), nullable=False)
    unit_agency_code: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="assigned")
    note: Mapped[str | None] = mapped_column(Text)
    eta_s: Mapped[float | None] = mapped_column(REAL)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(nullable=False, server_default="1", server_onupdate=FetchedValue())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, server_onupdate=FetchedValue()
    )
    change_xid: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=text(CURRENT_XID), index=True, server_onupdate=FetchedValue()
    )

    __table_args__ = (
        CheckConstraint(_in("status", TASKING_STATUSES), name="tasking_status_known"),
        Index(
            "uq_taskings_open_unit", "unit_id", unique=True, postgresql_where=text("status IN ('assigned', 'accepted')")
        ),
        Index("ix_taskings_incident", "incident_id"),
        Index("ix_taskings_unit_change", "unit_id", "change_xid"),
    )


class JointPatrol(Base):
    """A joint patrol plan: agencies and units of two or more states in a sector for a time window."""

    __tablename__ = "joint_patrols"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    owner_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), nullable=False)
    agencies: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # Route waypoints in order.
    route = mapped_column(Geometry("LINESTRING", srid=4326, spatial_index=False))
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(nullable=False, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="joint_patrol_window"),
        Index("ix_joint_patrols_agencies", "agencies", postgresql_using="gin"),
    )


class JointPatrolUnit(Base):
    __tablename__ = "joint_patrol_units"

    patrol_id: Mapped[int] = mapped_column(ForeignKey("joint_patrols.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("patrol_units.id", ondelete="CASCADE"), primary_key=True)


class HandoverPoint(Base):
    """Where a contact passes from one agency's units to another's during a joint patrol."""

    __tablename__ = "handover_points"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    patrol_id: Mapped[int] = mapped_column(
        ForeignKey("joint_patrols.id", ondelete="CASCADE"), nullable=False, index=True
    )
    seq: Mapped[int] = mapped_column(nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    from_agency: Mapped[str] = mapped_column(String(32), nullable=False)
    to_agency: Mapped[str] = mapped_column(String(32), nullable=False)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)


class IdempotentRequest(Base):
    """The response to a creating request, kept per caller and ``Idempotency-Key`` for replays."""

    __tablename__ = "idempotent_requests"

    username: Mapped[str] = mapped_column(String(64), nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(nullable=False)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)

    __table_args__ = (
        PrimaryKeyConstraint("username", "key"),
        Index("ix_idempotent_requests_created", "created_at"),
    )
