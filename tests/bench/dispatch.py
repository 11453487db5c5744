"""Dispatch benchmark: recommendation latency with 10,000 patrol units across the region.

(a) Borderwatch's recommendation (``patrols.dispatch.recommend``: visibility, authority, then the
nearest eligible units through the partial GiST index with KNN ``<->``, ranked by ETA), and
(b) a naive baseline in the same run: the same eligibility, ETA computed for every eligible unit
(a full scan), ranked; (a) is a whole service call (three statements), so the KNN statement is
also timed on its own. Both run on the same incidents, interleaved. It also reports how often
the two agree on the best unit. Run with the bench services (``BW_RUN_DIR=.run/bench``); the last
line is ``BENCH {json}``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import text

from cli.schema import migrate_database
from core.db import make_engine, session_scope
from core.security import Principal
from core.settings import get_settings
from geo.service import DATA_DIR
from patrols import dispatch, schemas
from patrols import incidents as incident_service

console = Console(stderr=True)
PREFIX = "BENCH-"

# The same eligibility as the service, without the index: every eligible unit gets an ETA.
NAIVE = text(
    """
    SELECT u.id,
           ST_Distance(u.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)
             * CASE WHEN u.kind = 'land' THEN :detour ELSE 1.0 END / (u.cruising_speed_kmh / 3.6) AS eta_s
    FROM patrol_units u
    WHERE u.status = 'available' AND u.kind = ANY(CAST(:kinds AS text[]))
      AND u.agency_code = ANY(CAST(:agencies AS text[]))
      AND NOT EXISTS (SELECT 1 FROM taskings t WHERE t.unit_id = u.id AND t.status IN ('assigned', 'accepted'))
    ORDER BY eta_s, u.id
    LIMIT :limit
    """
)


def agencies() -> list[dict]:
    return json.loads((DATA_DIR / "agencies.json").read_text())


def prepare(engine, settings, units: int, seed: int) -> None:
    """Borders and agencies in place; exactly ``units`` bench units spread over the agencies' states."""
    from geo import service as geo_service

    with session_scope(engine) as s:
        if not s.execute(text("SELECT count(*) FROM border_segments")).scalar():
            geo_service.load_shipped_borders(session=s, buffer_m=settings.border_buffer_m)
        geo_service.ensure_agencies(session=s)
        s.execute(text("DELETE FROM incidents WHERE title LIKE :p"), {"p": PREFIX + "%"})
        s.execute(text("DELETE FROM patrol_units WHERE callsign LIKE :p"), {"p": PREFIX + "%"})
        listed = agencies()
        s.execute(text("SELECT setseed(:seed)"), {"seed": (seed % 1000) / 1000})
        # One statement: each agency's units at random places within (and around) its state,
        # land agencies with land units and some aircraft, maritime ones with boats and some aircraft.
        s.execute(
            text(
                """
            INSERT INTO patrol_units (agency_code, callsign, kind, capabilities, cruising_speed_kmh, home_base, geom,
                                      status, mqtt_password_hash)
            SELECT a.code, :prefix || a.code || '-' || g,
                   CASE WHEN r.k < 0.9 THEN CASE a.domain WHEN 'land' THEN 'land' ELSE 'maritime' END ELSE 'air' END,
                   '{}', CASE WHEN r.k < 0.9 THEN 30 + r.v * 60 ELSE 150 + r.v * 200 END, p.pt, p.pt,
                   CASE WHEN r.s < 0.8 THEN 'available' WHEN r.s < 0.9 THEN 'en_route' ELSE 'off_duty' END, '!'
            FROM unnest(CAST(:codes AS text[]), CAST(:domains AS text[]), CAST(:countries AS text[]))
                   AS a(code, domain, country)
            JOIN states st ON st.code = a.country
            CROSS JOIN LATERAL generate_series(1, :per_agency) g
            CROSS JOIN LATERAL (SELECT random() AS k, random() AS v, random() AS s, g AS dummy) r
            CROSS JOIN LATERAL (
                SELECT ST_SetSRID(ST_MakePoint(
                           ST_XMin(e) + random() * (ST_XMax(e) - ST_XMin(e)),
                           ST_YMin(e) + random() * (ST_YMax(e) - ST_YMin(e))), 4326) AS pt
                FROM (SELECT ST_Expand(ST_Envelope(st.geom), 0.5) AS e, g AS dummy) x) p
            """
            ),
            {
                "prefix": PREFIX,
                "codes": [a["code"] for a in listed],
                "domains": [a["domain"] for a in listed],
                "countries": [a["country"] for a in listed],
                "per_agency": units // len(listed),
            },
        )
        extra = (
            units
            - s.execute(text("SELECT count(*) FROM patrol_units WHERE callsign LIKE :p"), {"p": PREFIX + "%"}).scalar()
        )
        if extra > 0:
            s.execute(
                text(
                    "INSERT INTO patrol_units (agency_code, callsign, kind, cruising_speed_kmh, home_base, geom, "
                    "mqtt_password_hash) SELECT 'TH-RTP', :prefix || 'X-' || g, 'land', 60, "
                    "ST_SetSRID(ST_MakePoint(100 + random(), 14 + random()), 4326), "
                    "ST_SetSRID(ST_MakePoint(100 + random(), 14 + random()), 4326), '!' FROM generate_series(1, :n) g"
                ),
                {"prefix": PREFIX, "n": extra},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE patrol_units"))


def make_incidents(engine, n: int, seed: int) -> list[tuple[int, Principal]]:
    """Incidents inside states (land agencies) and territorial seas (maritime agencies)."""
    rng = random.Random(seed)
    listed = agencies()
    out = []
    with session_scope(engine) as s:
        for i in range(n):
            agency = rng.choice(listed)
            area = (
                "SELECT geom FROM states WHERE code = :c"
                if agency["domain"] == "land"
                else "SELECT geom FROM zones WHERE kind = 'territorial_sea' AND state = :c ORDER BY id LIMIT 1"
            )
            point = s.execute(
                text(
                    f"SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 1, :seed))).geom AS p "
                    f"FROM ({area}) a) x"
                ),
                {"c": agency["country"], "seed": seed + i},
            ).first()
            if point is None:  # a maritime agency without a shipped territorial sea
                continue
            principal = Principal(username="bench", agency_code=agency["code"], role="operator")
            incident = incident_service.create_incident(
                session=s,
                principal=principal,
                incident_in=schemas.IncidentCreate(title=f"{PREFIX}{i}", lon=point[0], lat=point[1]),
            )
            out.append((incident.id, principal))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=10_000, help="patrol units across the region")
    parser.add_argument("--incidents", type=int, default=200, help="incidents to recommend for")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the incidents")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    settings = get_settings()
    migrate_database(settings.owner_url())
    engine = make_engine(settings.owner_url())  # resets and reads as the owner; the services run as their roles
    results = measure(settings, engine, units=args.units, incidents=args.incidents, rounds=args.rounds, seed=args.seed)
    report(results)
    print("BENCH " + json.dumps(results))


def measure(settings, engine, *, units: int, incidents: int, rounds: int, seed: int) -> dict:
    """Recommendations for ``incidents`` incidents among ``units`` units, ``rounds`` passes."""
    with console.status(f"placing {units:,} units and {incidents} incidents"):
        prepare(engine, settings, units, seed)
        incidents = make_incidents(engine, incidents, seed)
    knn_ms, naive_ms, statement_ms, agree, non_empty = [], [], [], 0, 0
    with Progress(console=console) as progress, session_scope(engine) as s:
        task = progress.add_task("recommendations", total=rounds * len(incidents))
        for round_no in range(rounds):
            for incident_id, principal in incidents:
                t0 = time.perf_counter()
                rec = dispatch.recommend(session=s, principal=principal, incident_id=incident_id, limit=10)
                t1 = time.perf_counter()
                row = s.execute(dispatch.INCIDENT_AUTHORITY, {"id": incident_id}).one()
                authority = dispatch.authority_of(row)
                naive = s.execute(
                    NAIVE,
                    {
                        "kinds": list(dispatch.DOMAIN_KINDS[row.domain]),
                        "agencies": authority.agencies or [""],
                        "lon": row.lon,
                        "lat": row.lat,
                        "detour": dispatch.LAND_DETOUR_FACTOR,
                        "limit": 10,
                    },
                ).all()
                t2 = time.perf_counter()
                dispatch.eligible_units(s, row, limit=10)
                t3 = time.perf_counter()
                knn_ms.append((t1 - t0) * 1000)
                naive_ms.append((t2 - t1) * 1000)
                statement_ms.append((t3 - t2) * 1000)
                if round_no == 0 and naive:
                    non_empty += 1
                    agree += bool(rec.units) and rec.units[0].unit_id == naive[0].id
                progress.advance(task)
        s.rollback()
    return {
        "units": units,
        "incidents": len(incidents),
        "samples": len(knn_ms),
        "recommend_p50_ms": round(statistics.median(knn_ms), 2),
        "recommend_p95_ms": round(percentile(knn_ms, 95), 2),
        "recommend_p99_ms": round(percentile(knn_ms, 99), 2),
        "knn_statement_p50_ms": round(statistics.median(statement_ms), 2),
        "knn_statement_p95_ms": round(percentile(statement_ms, 95), 2),
        "naive_p50_ms": round(statistics.median(naive_ms), 2),
        "naive_p95_ms": round(percentile(naive_ms, 95), 2),
        "incidents_with_eligible_units": non_empty,
        "same_best_unit_as_naive": agree,
    }


def report(results: dict) -> None:
    table = Table(title=f"Dispatch recommendation, {results['units']:,} units, {results['samples']:,} requests")
    for column in ("query", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right" if column != "query" else "left")
    table.add_row(
        "(a) recommend: authority + KNN <-> on the partial GiST index, ETA ranking",
        f"{results['recommend_p50_ms']}",
        f"{results['recommend_p95_ms']}",
    )
    table.add_row(
        "    of which the KNN statement alone",
        f"{results['knn_statement_p50_ms']}",
        f"{results['knn_statement_p95_ms']}",
    )
    table.add_row(
        "(b) naive: ETA for every eligible unit (full scan), ranked",
        f"{results['naive_p50_ms']}",
        f"{results['naive_p95_ms']}",
    )
    out = Console(width=140)
    out.print(table)
    out.print(
        f"best unit identical to the full scan's for {results['same_best_unit_as_naive']} of "
        f"{results['incidents_with_eligible_units']} incidents with eligible units"
    )


if __name__ == "__main__":
    main()
