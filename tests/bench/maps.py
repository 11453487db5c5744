"""Map benchmark: the COP with N recent detections of one agency (default 10,000).

Measures (a) the detections endpoint as the COP asks for it (bbox, start, limit) on the server,
(b) in Debian's Chromium driven by Playwright: from opening /maps/cop until every layer has
loaded and all N detections are in the cluster layer, and (c) one incremental poll (since=).
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

from core import service as core_service
from core.cli import migrate_database
from core.db import make_engine, session_scope
from core.settings import REPO_ROOT, get_settings

console = Console(stderr=True)
AGENCY = "TH-BENCHMAPS"
GATEWAY = "bench-maps-gw"
USER = "bench-maps-operator"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The COP's default view (centre 6.15, 101.2 at zoom 8 in 1280x800), padded as live.js pads it.
BBOX = "95.9271,2.8709,106.4740,9.4231"


def prepare(settings, engine, detections: int) -> str:
    """The bench agency with one operator and ``detections`` detections in the last 5 hours."""
    from geo import service as geo_service

    password = secrets.token_urlsafe(16)
    with session_scope(engine) as s:
        if not s.execute(text("SELECT count(*) FROM border_segments")).scalar():
            geo_service.load_shipped_borders(session=s, buffer_m=settings.border_buffer_m)
        s.execute(text("DELETE FROM users WHERE agency_code = :a"), {"a": AGENCY})
        s.execute(text("DELETE FROM detections WHERE agency_code = :a"), {"a": AGENCY})
        s.execute(text("DELETE FROM sensors WHERE agency_code = :a"), {"a": AGENCY})
        s.execute(text("DELETE FROM gateways WHERE agency_code = :a"), {"a": AGENCY})
        if not s.execute(text("SELECT 1 FROM agencies WHERE code = :a"), {"a": AGENCY}).scalar():
            core_service.create_agency(session=s, code=AGENCY, country="TH", name="Map benchmark agency")
        core_service.create_user(session=s, username=USER, agency_code=AGENCY, role="operator", password=password)
        s.execute(text("INSERT INTO gateways (id, agency_code, name, mqtt_password_hash, status) "
                       "VALUES (:g, :a, 'bench', 'x', 'online')"), {"g": GATEWAY, "a": AGENCY})
        s.execute(text("""
            INSERT INTO sensors (id, agency_code, gateway_id, kind, name, location)
            SELECT 'bench-maps-cam-' || i, :a, :g, 'camera', 'Bench camera ' || i,
                   ST_SetSRID(ST_MakePoint(100.3 + i * 0.08, 6.6 - i * 0.03), 4326)
            FROM generate_series(0, 19) AS i"""), {"a": AGENCY, "g": GATEWAY})
        # Spread along the Thai-Malaysian border; one set-based insert.
        s.execute(text("""
            INSERT INTO detections (observed_at, received_at, sensor_id, agency_code, event_id, geom, located_by,
                                    class, confidence, track_id, track_key, raw)
            SELECT now() - (g * (interval '5 hours' / :n)), now() - (g * (interval '5 hours' / :n)),
                   'bench-maps-cam-' || (g % 20), :a, 'bench-maps-' || g,
                   ST_SetSRID(ST_MakePoint(100.3 + (g % 20) * 0.08 + (g % 97) * 0.0004,
                                           6.6 - (g % 20) * 0.03 + (g % 89) * 0.0004), 4326),
                   'payload', (ARRAY['person', 'vehicle', 'boat'])[1 + g % 3], 0.8, 't' || (g / 10),
                   'bench-maps-cam-' || (g % 20) || chr(58) || 't' || (g / 10), '{}'
            FROM generate_series(1, :n) AS g"""), {"a": AGENCY, "n": detections})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE detections"))
    return password


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port",
                             str(port), "--log-level", "warning"], cwd=REPO_ROOT, env={**os.environ})
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


def bench_endpoint(base: str, password: str, n: int, rounds: int) -> tuple[list[float], int, list[float]]:
    token = httpx.post(base + "/api/v1/auth/token", data={"username": USER, "password": password}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    start = (datetime.now(timezone.utc) - timedelta(hours=6)).isoformat()
    params = {"bbox": BBOX, "start": start, "limit": n}
    full, size, incremental = [], 0, []
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
    return full, size, incremental


def bench_browser(base: str, password: str, n: int, rounds: int) -> list[float]:
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
                "n => window.BW && BW.layers.detections && BW.layers.detections.count >= n"
                " && document.body.getAttribute('data-bw-live') === 'ok'", arg=n, timeout=60_000, polling=20)
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
    migrate_database(settings.database_url)
    engine = make_engine(settings.database_url)
    results = measure(settings, engine, args.detections, args.rounds)
    report(results, args.rounds)
    print("BENCH_MAPS " + json.dumps(results))


def measure(settings, engine, detections: int, rounds: int) -> dict:
    """The endpoint and the page with ``detections`` recent detections; medians of ``rounds``."""
    with console.status(f"inserting {detections:,} detections"):
        password = prepare(settings, engine, detections)
    proc, base = start_api()
    try:
        with console.status("endpoint"):
            full, size, incremental = bench_endpoint(base, password, detections, rounds)
        with console.status("browser"):
            page = bench_browser(base, password, detections, rounds)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return {
        "detections": detections,
        "endpoint_full_s_median": round(statistics.median(full), 3),
        "endpoint_full_bytes": size,
        "endpoint_since_s_median": round(statistics.median(incremental), 3),
        "cop_loaded_s_median": round(statistics.median(page), 3),
        "cop_loaded_s_max": round(max(page), 3),
    }


def report(results: dict, rounds: int) -> None:
    size = results["endpoint_full_bytes"]
    table = Table(title=f"COP with {results['detections']:,} recent detections ({rounds} rounds)")
    table.add_column("measure")
    table.add_column("median", justify="right")
    table.add_row("GET /api/v1/detections (bbox, start, limit)", f"{results['endpoint_full_s_median'] * 1000:.0f} ms"
                  f" ({size / 1e6:.1f} MB)")
    table.add_row("GET /api/v1/detections?since= (incremental poll)",
                  f"{results['endpoint_since_s_median'] * 1000:.0f} ms")
    table.add_row("open /maps/cop until every layer and all detections are drawn",
                  f"{results['cop_loaded_s_median']:.2f} s (max {results['cop_loaded_s_max']:.2f} s)")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
