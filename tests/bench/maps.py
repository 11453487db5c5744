"""Map benchmark: the COP with N recent detections of one agency (default 10,000) and its 500
patrol units.

Measures (a) the detections endpoint as the COP asks for it (bbox, start, limit) on the server,
(b) in Debian's Chromium driven by Playwright: from opening /maps/cop until every layer has
loaded, all N detections are in the cluster layer and all units are drawn, (c) one incremental
poll (since=), and (d) the units endpoint as the COP asks for it.
Run with `make bench-maps` (its own PostgreSQL and Mosquitto). The last line is ``BENCH_MAPS {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from accounts import service as accounts
from cli.schema import migrate_database
from core.db import make_engine, session_scope
from core.settings import REPO_ROOT, get_settings

console = Console(stderr=True)
AGENCY = "TH-BENCHMAPS"
GATEWAY = "bench-maps-gw"
USER = "bench-maps-operator"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The COP's default view (centre 6.15, 101.2 at zoom 8 in 1280x800), padded as live.js pads it.
BBOX = "95.9271,2.8709,106.4740,9.4231"
UNITS = 500


def prepare(settings, engine, detections: int) -> str:
    """The bench agency with one operator, ``detections`` detections in the last 5 hours and
    :data:`UNITS` patrol units (land, maritime and air, in every status) along the border."""
    from geo import service as geo_service

    password = secrets.token_urlsafe(16)
    with session_scope(engine) as s:
        if not s.execute(text("SELECT count(*) FROM border_segments")).scalar():
            geo_service.load_shipped_borders(session=s, buffer_m=settings.border_buffer_m)
        s.execute(text("DELETE FROM patrol_units WHERE agency_code = :a"), {"a": AGENCY})
        s.execute(text("DELETE FROM users WHERE agency_code = :a"), {"a": AGENCY})
        s.execute(text("DELETE FROM detections WHERE agency_code = :a"), {"a": AGENCY})
        s.execute(text("DELETE FROM sensors WHERE agency_code = :a"), {"a": AGENCY})
        s.execute(text("DELETE FROM gateways WHERE agency_code = :a"), {"a": AGENCY})
        if not s.execute(text("SELECT 1 FROM agencies WHERE code = :a"), {"a": AGENCY}).scalar():
            accounts.create_agency(session=s, code=AGENCY, country="TH", name="Map benchmark agency")
        accounts.create_user(session=s, username=USER, agency_code=AGENCY, role="operator", password=password)
        s.execute(
            text(
                "INSERT INTO gateways (id, agency_code, name, mqtt_password_hash, status) "
                "VALUES (:g, :a, 'bench', '!', 'online')"
            ),
            {"g": GATEWAY, "a": AGENCY},
        )
        s.execute(
            text("""
            INSERT INTO sensors (id, agency_code, gateway_id, kind, name, location)
            SELECT 'bench-maps-cam-' || i, :a, :g, 'camera', 'Bench camera ' || i,
                   ST_SetSRID(ST_MakePoint(100.3 + i * 0.08, 6.6 - i * 0.03), 4326)
            FROM generate_series(0, 19) AS i"""),
            {"a": AGENCY, "g": GATEWAY},
        )
        # Spread along the Thai-Malaysian border; one set-based insert.
        s.execute(
            text("""
            INSERT INTO detections (observed_at, received_at, sensor_id, agency_code, event_id, geom, located_by,
                                    class, confidence, track_id, track_key, raw)
            SELECT now() - (g * (interval '5 hours' / :n)), now() - (g * (interval '5 hours' / :n)),
                   'bench-maps-cam-' || (g % 20), :a, 'bench-maps-' || g,
                   ST_SetSRID(ST_MakePoint(100.3 + (g % 20) * 0.08 + (g % 97) * 0.0004,
                                           6.6 - (g % 20) * 0.03 + (g % 89) * 0.0004), 4326),
                   'payload', (ARRAY['person', 'vehicle', 'boat'])[1 + g % 3], 0.8, 't' || (g / 10),
                   'bench-maps-cam-' || (g % 20) || chr(58) || 't' || (g / 10), '{}'
            FROM generate_series(1, :n) AS g"""),
            {"a": AGENCY, "n": detections},
        )
        s.execute(
            text("""
            INSERT INTO patrol_units (agency_code, callsign, kind, capabilities, cruising_speed_kmh, home_base, geom,
                                      position_at, status, mqtt_password_hash)
            SELECT :a, 'Bench ' || g, (ARRAY['land', 'land', 'maritime', 'air'])[1 + g % 4], '{}',
                   (ARRAY[60, 60, 40, 180])[1 + g % 4], p, p, now() - (g * interval '1 second'),
                   (ARRAY['available', 'available', 'en_route', 'on_scene', 'returning', 'off_duty'])[1 + g % 6], '!'
            FROM generate_series(1, :n) AS g,
                 LATERAL (SELECT ST_SetSRID(ST_MakePoint(100.3 + (g % 50) * 0.032, 6.7 - (g / 50) * 0.06),
                                            4326) AS p) AS place"""),
            {"a": AGENCY, "n": UNITS},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE detections"))
        conn.execute(text("ANALYZE patrol_units"))
    return password


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO_ROOT,
        env={**os.environ},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the API server did not start")


def bench_endpoint(base: str, password: str, n: int, rounds: int) -> tuple[list[float], int, list[float], list[float]]:
    token = httpx.post(base + "/api/v1/auth/token", data={"username": USER, "password": password}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    start = (datetime.now(timezone.utc) - timedelta(hours=6)).isoformat()
    params = {"bbox": BBOX, "start": start, "limit": n}
    full, size, incremental, units = [], 0, [], []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        for _ in range(rounds):
            t0 = time.perf_counter()
            r = c.get("/api/v1/detections", params=params)
            full.append(time.perf_counter() - t0)
            size = len(r.content)
            since = (datetime.now(timezone.utc) - timedelta(seconds=30)).isoformat()
            t0 = time.perf_counter()
            c.get("/api/v1/detections", params={**params, "since": since})
            incremental.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            r = c.get("/api/v1/features/units", params={"bbox": BBOX, "limit": 1000})
            units.append(time.perf_counter() - t0)
            if r.json()["numberReturned"] != UNITS:
                raise SystemExit(f"the units endpoint returned {r.json()['numberReturned']} units, not {UNITS}")
    return full, size, incremental, units


def bench_browser(base: str, password: str, n: int, rounds: int, units: int = UNITS) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        # bypass_csp: the page's policy forbids the evaluated predicate below, not the page's own code.
        context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        page = context.new_page()
        page.goto(base + "/login")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("button[type=submit]")
        for _ in range(rounds):
            t0 = time.perf_counter()
            page.goto(base + "/maps/cop")
            page.wait_for_function(
                "([n, u]) => window.BW && BW.layers.detections && BW.layers.detections.count >= n"
                " && BW.layers.units && BW.layers.units.count >= u"
                " && document.body.getAttribute('data-bw-live') === 'ok'",
                arg=[n, units],
                timeout=60_000,
                polling=20,
            )
            times.append(time.perf_counter() - t0)
        browser.close()
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detections", type=int, default=10_000, help="recent detections of the agency (≤ 10,000)")
    parser.add_argument("--rounds", type=int, default=5, help="repetitions (medians are reported)")
    args = parser.parse_args(argv)
    if not 1 <= args.detections <= 10_000:
        raise SystemExit("--detections must be 1..10000 (the endpoint's limit)")
    settings = get_settings()
    migrate_database(settings.owner_url())
    engine = make_engine(settings.owner_url())  # resets and reads as the owner; the services run as their roles
    results = measure(settings, engine, args.detections, args.rounds)
    report(results, args.rounds)
    print("BENCH_MAPS " + json.dumps(results))


def measure(settings, engine, detections: int, rounds: int) -> dict:
    """The endpoint and the page with ``detections`` recent detections; medians of ``rounds``."""
    with console.status(f"inserting {detections:,} detections and {UNITS} units"):
        password = prepare(settings, engine, detections)
    proc, base = start_api()
    try:
        with console.status("endpoint"):
            full, size, incremental, units = bench_endpoint(base, password, detections, rounds)
        with console.status("browser"):
            page = bench_browser(base, password, detections, rounds)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return {
        "detections": detections,
        "units": UNITS,
        "endpoint_units_s_median": round(statistics.median(units), 3),
        "endpoint_full_s_median": round(statistics.median(full), 3),
        "endpoint_full_bytes": size,
        "endpoint_since_s_median": round(statistics.median(incremental), 3),
        "cop_loaded_s_median": round(statistics.median(page), 3),
        "cop_loaded_s_max": round(max(page), 3),
    }


def report(results: dict, rounds: int) -> None:
    size = results["endpoint_full_bytes"]
    table = Table(
        title=f"COP with {results['detections']:,} recent detections and {results.get('units', 0)} units "
        f"({rounds} rounds)"
    )
    table.add_column("measure")
    table.add_column("median", justify="right")
    table.add_row(
        "GET /api/v1/detections (bbox, start, limit)",
        f"{results['endpoint_full_s_median'] * 1000:.0f} ms ({size / 1e6:.1f} MB)",
    )
    table.add_row(
        "GET /api/v1/detections?since= (incremental poll)", f"{results['endpoint_since_s_median'] * 1000:.0f} ms"
    )
    if "endpoint_units_s_median" in results:
        table.add_row("GET /api/v1/features/units (bbox, limit)", f"{results['endpoint_units_s_median'] * 1000:.0f} ms")
    table.add_row(
        "open /maps/cop until every layer, all detections and all units are drawn",
        f"{results['cop_loaded_s_median']:.2f} s (max {results['cop_loaded_s_max']:.2f} s)",
    )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
