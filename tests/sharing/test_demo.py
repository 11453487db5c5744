"""The demo sharing agreements: seeded once; a partner's COP then shows the releasing agency's alerts, redacted."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
from sqlalchemy import text

import features.alerts
from core.security import Principal
from features.geojson import collection
from geo import service as geo_service
from sharing.demo import DEMO_AGREEMENTS, seed_demo_agreements
from tests.factories import Factory


def test_demo_agreements_are_seeded_once_and_release_to_the_partner(session):
    geo_service.ensure_agencies(session=session)
    assert seed_demo_agreements(session=session) == len(DEMO_AGREEMENTS)
    assert seed_demo_agreements(session=session) == 0
    lon, lat = session.execute(
        text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM zones "
            "WHERE name = 'Thailand–Malaysia 1 buffer TH') z"
        )
    ).one()
    factory = Factory(session)
    sensor = factory.sensor("TH-RTP", lon, lat)
    alert = factory.alert(
        sensor, "TH-RTP", lon, lat, datetime.now(timezone.utc) - timedelta(minutes=5), title="crossing: plate DEMO-123"
    )

    def seen_by(agency: str) -> dict:
        fc = orjson.loads(
            collection(
                features.alerts.LAYER, session=session, principal=Principal("demo", agency, "operator"), ids=[alert]
            )
        )
        return {f["id"]: f["properties"] for f in fc["features"]}

    assert seen_by("MY-PDRM")[alert]["redacted"] is True
    assert seen_by("MY-PDRM")[alert]["title"] == "crossing" and seen_by("MY-PDRM")[alert]["shared_by"] == "TH-RTP"
    assert seen_by("TH-RTP")[alert]["title"] == "crossing: plate DEMO-123"
    assert seen_by("MY-MMEA") == {}
