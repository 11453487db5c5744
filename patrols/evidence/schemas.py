"""What crosses the wire for evidence: items, hand-overs and their acceptance, custody events, the
chain with its verification, and the check of stored bytes against the recorded hash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict, StringConstraints, model_validator

from patrols.evidence.models import EVENT_KINDS, ITEM_KINDS, ITEM_STATUSES, MEDIA_KINDS
from patrols.schemas import AgencyCode, Id, Lat, Lon, PointGeometry, Text

ItemKind = Literal[ITEM_KINDS]  # type: ignore[valid-type]
ItemStatus = Literal[ITEM_STATUSES]  # type: ignore[valid-type]
EventKind = Literal[EVENT_KINDS]  # type: ignore[valid-type]
# What the custodian records outside a hand-over.
RecordedKind = Literal["sealed", "unsealed", "examined", "released", "destroyed", "returned"]

Name = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]*\S[^\x00-\x1f]*$")]
Short = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]*\S[^\x00-\x1f]*$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$", to_lower=True)]
_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]*"
MediaType = Annotated[str, StringConstraints(max_length=127, pattern=rf"^{_TOKEN}/{_TOKEN}$")]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^[\x21-\x7e]+$")]
# A receiver's signature as the device captured it (e.g. a base64 PNG of a signed pad), kept in the chain.
Signature = Annotated[str, StringConstraints(min_length=1, max_length=16000, pattern=r"^[\x20-\x7e]+$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class EvidenceCreate(_In):
    kind: ItemKind
    description: Text
    content_uri: Uri | None = Field(None, description="Where the bytes are (object key, URI) when not uploaded here")
    content_sha256: Sha256 | None = Field(None, description="SHA-256 of the content (hex); required for media")
    content_size: Annotated[int, Strict(), Field(ge=0, le=2**53)] | None = None
    media_type: MediaType | None = Field(None, description="e.g. image/jpeg, video/mp4; required for media")
    quantity: Short | None = Field(None, description="Seized items: how much (e.g. '12 packets, 1.2 kg')")
    seal_number: Short | None = Field(None, description="Seized items: the seal on the bag, if sealed at once")
    collected_by: Name | None = Field(None, description="Person or unit who collected it (default: the caller)")
    collected_at: AwareDatetime | None = Field(None, description="When (default: now)")
    lon: Lon | None = None
    lat: Lat | None = None
    custodian: Name | None = Field(None, description="Who holds it in the caller's agency (default: collected_by)")
    note: Text | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "EvidenceCreate":
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon and lat go together")
        content = (self.content_uri, self.content_sha256, self.content_size, self.media_type)
        if self.kind in MEDIA_KINDS:
            if self.content_sha256 is None or self.media_type is None:
                raise ValueError(f"a {self.kind} needs content_sha256 and media_type (the hash of its bytes)")
            if self.quantity is not None or self.seal_number is not None:
                raise ValueError("quantity and seal_number are for seized items")
        elif self.kind == "seized_item" and any(v is not None for v in content):
            raise ValueError("a seized item has no content: describe it, its quantity and its seal")
        if self.content_sha256 is None and any(v is not None for v in content):
            raise ValueError("content_uri, content_size and media_type need content_sha256")
        return self


class HandoverCreate(_In):
    to_agency: AgencyCode
    to_custodian: Name = Field(description="Person, office or unit of the receiving agency")
    to_unit_id: Id | None = Field(
        None, description="A unit of the receiving agency that takes it (its device may accept)"
    )
    reason: Text


class AcceptIn(_In):
    received_by: Name = Field(description="The person who took the item")
    custodian: Name | None = Field(None, description="Who holds it now (default: the custodian named at hand-over)")
    acknowledgement: Text | None = Field(None, description="The receiver's statement (condition, seal, count)")
    seal_intact: bool | None = None
    signature: Signature | None = None
    handover_seq: Annotated[int, Strict(), Field(ge=1, le=2**31 - 1)] | None = Field(
        None, description="The hand-over event being accepted (refused if another one is pending)"
    )


class DeclineIn(_In):
    reason: Text


class EventIn(_In):
    kind: RecordedKind
    note: Text | None = Field(None, description="Findings, reason; required but for sealed and examined")
    seal_number: Short | None = Field(None, description="sealed: the new seal")
    recipient: Name | None = Field(None, description="released, returned: to whom")

    @model_validator(mode="after")
    def _consistent(self) -> "EventIn":
        if self.kind == "sealed" and self.seal_number is None:
            raise ValueError("sealed needs seal_number")
        if self.kind != "sealed" and self.seal_number is not None:
            raise ValueError("seal_number goes with sealed")
        if self.kind in ("released", "returned") and self.recipient is None:
            raise ValueError(f"{self.kind} needs recipient")
        if self.kind not in ("sealed", "examined") and self.note is None:
            raise ValueError(f"{self.kind} needs a note saying why")
        return self


class EvidenceOut(BaseModel):
    id: int
    incident_id: int
    agency_code: str = Field(description="The collecting agency")
    kind: ItemKind
    description: str
    content_uri: str | None
    content_sha256: str | None
    content_size: int | None
    media_type: str | None
    content_stored: bool = Field(description="The bytes were uploaded and are kept by the service")
    quantity: str | None
    seal_number: str | None
    sealed: bool
    collected_by: str
    collected_at: datetime
    location: PointGeometry | None
    custodian_agency: str
    custodian: str
    custodian_unit_id: int | None
    status: ItemStatus
    pending_agency: str | None = Field(description="In transit: the agency it is being handed to")
    pending_custodian: str | None
    pending_unit_id: int | None
    agencies: list[str] = Field(description="Agencies that held it or were asked to take it")
    events: int = Field(description="Custody events so far")
    head_hash: str = Field(description="Hash of the last custody event")
    created_by: str
    created_at: datetime
    updated_at: datetime


class EvidencePage(BaseModel):
    items: list[EvidenceOut]
    next_cursor: str | None


class CustodyEventOut(BaseModel):
    seq: int
    at: datetime
    kind: str
    actor: str
    actor_agency: str
    from_agency: str | None
    from_custodian: str | None
    to_agency: str | None
    to_custodian: str | None
    note: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class ChainProblem(BaseModel):
    kind: Literal["altered", "removed", "reordered", "item_altered"]
    seq: int = Field(description="The event where the chain breaks")
    message: str


class ChainOut(BaseModel):
    item_id: int
    verified: bool
    broken_at: int | None = Field(description="The first event where the chain breaks")
    problems: list[ChainProblem]
    events: list[CustodyEventOut]


class ContentCheck(BaseModel):
    item_id: int
    stored: bool
    recorded_sha256: str | None
    actual_sha256: str | None
    size: int | None
    matches: bool
