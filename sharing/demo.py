"""Demo sharing agreements (``borderwatch seed-demo``), so a partner's COP shows what is shared with it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.security import Principal
from sharing import schemas, service

# from agency, recipient (agency code, or "sector:" + joint sector name), alert kinds, incident
# categories, zone names (empty: anywhere), personal data, purpose (also the key that makes seeding idempotent).
DEMO_AGREEMENTS = [
    (
        "TH-RTP",
        "MY-PDRM",
        ["crossing", "zone_entry"],
        ["people_smuggling", "trafficking_in_persons", "drugs"],
        ["Thailand–Malaysia 1 buffer TH"],
        False,
        "Demo: Thailand–Malaysia General Border Committee, exchange of border-strip alerts (no personal data)",
    ),
    (
        "MY-MMEA",
        "sector:Malacca Straits Patrol sector",
        ["dark_vessel", "rendezvous", "ais_gap"],
        ["piracy"],
        ["Malacca Straits Patrol sector"],
        True,
        "Demo: Malacca Straits Patrol, maritime picture of the sector with vessel identities",
    ),
]
DEMO_HISTORY = timedelta(days=30)


def seed_demo_agreements(*, session: Session) -> int:
    """Create the demo agreements that do not exist yet (by releasing agency and purpose); returns how many."""
    created = 0
    zone_ids = {name: zone_id for name, zone_id in session.execute(text("SELECT name, id FROM zones"))}
    now = session.execute(text("SELECT now()")).scalar_one()
    for agency, recipient, kinds, categories, zones, personal, purpose in DEMO_AGREEMENTS:
        exists = session.execute(
            text("SELECT 1 FROM sharing_agreements WHERE from_agency = :a AND purpose = :p AND withdrawn_at IS NULL"),
            {"a": agency, "p": purpose},
        ).first()
        if exists or any(z not in zone_ids for z in zones):
            continue
        sector = recipient.removeprefix("sector:") if recipient.startswith("sector:") else None
        if sector is not None and sector not in zone_ids:
            continue
        service.create_agreement(
            session=session,
            principal=Principal(username="seed-demo", agency_code=agency, role="admin"),
            agreement_in=schemas.AgreementCreate(
                to_agency=None if sector else recipient,
                to_sector_zone_id=zone_ids[sector] if sector else None,
                alert_kinds=kinds,
                incident_categories=categories,
                zone_ids=[zone_ids[z] for z in zones],
                valid_from=now - DEMO_HISTORY,
                personal_data=personal,
                purpose=purpose,
            ),
        )
        created += 1
    return created
