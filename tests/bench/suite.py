"""The benchmark suite behind ``make bench``: one report, whose last line is ``BENCH {json}``.

1. Ingest throughput: the same stream through (a) raw paho QoS 1 consumption that only counts,
   (b) the naive pipeline (per message: INSERT, ST_Intersects, commit) and (c) Borderwatch's
   ingest worker; each round runs a, c, b back to back and the ratios are taken per round, then
   the median. Beside each rate: the CPU per message of Python, PostgreSQL and Mosquitto.
2. Publish -> committed alert latency at several fixed rates (a separate worker process).
3. Growth: the same measures with 10k / 100k / 1M stored detections (10,000 of them in the
   last hour, the rest over the previous weeks): ingest rate (c), alert latency at one rate,
   and the control-room map's read — the detections GeoJSON of the last hour in the border
   area, 10,000 features — over real HTTP from a running API server.
4. Dispatch: recommendation latency with 10,000 patrol units across the region, against a
   full-scan baseline in the same run (tests.bench.dispatch).
5. The map: the control-room page (/maps/cop) in Debian's Chromium with 10,000 recent
   detections, from opening it until every layer is drawn (tests.bench.maps).

Run with ``make bench`` (its own PostgreSQL and Mosquitto); ``--help`` lists the knobs.
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
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import text

from accounts import service as accounts
from cli.schema import migrate_database
from core.db import make_engine, session_scope
from core.errors import NotFound
from core.settings import get_settings
from tests.bench import dispatch as dispatch_bench
from tests.bench import ingest as ingest_bench
from tests.bench import maps as maps_bench
from tests.bench.cpu import CpuMeter

console = Console(stderr=True)
BENCH_USER = "bench-operator"
# The border area the map looks at (Sadao / Padang Besar), where the bench sensors are.
COP_BBOX = (100.0, 6.2, 101.2, 6.9)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 1)


# -- 1. throughput ------------------------------------------------------------------------
def throughput(settings, engine, meter, args, progress, task) -> dict:
    raw, bw, naive = [], [], []
    cpu = {"raw": [], "borderwatch": [], "naive": []}
    totals = {}
    for _ in range(args.rounds):
        rate, c = ingest_bench.bench_raw(settings, args.messages, meter)
        raw.append(rate), cpu["raw"].append(c)
        progress.advance(task)
        rate, totals, c = ingest_bench.bench_borderwatch(settings, engine, args.messages, meter)
        bw.append(rate), cpu["borderwatch"].append(c)
        progress.advance(task)
        rate, c = ingest_bench.bench_naive(settings, args.naive_messages, meter)
        naive.append(rate), cpu["naive"].append(c)
        progress.advance(task)
    # A slow moment of a shared machine weighs on both sides of a per-round ratio.
    per_round_ca = [c / a for c, a in zip(bw, raw)]
    per_round_cb = [c / b for c, b in zip(bw, naive)]
    median_cpu = {
        name: {k: round(statistics.median(r[k] for r in rounds), 1) for k in rounds[0]}
        for name, rounds in cpu.items()
        if rounds and rounds[0]
    }
    return {
        "messages": args.messages,
        "raw_msgs_per_s": round(statistics.median(raw)),
        "naive_msgs_per_s": round(statistics.median(naive)),
        "borderwatch_msgs_per_s": round(statistics.median(bw)),
        "ratio_borderwatch_to_raw": round(statistics.median(per_round_ca), 3),
        "ratio_borderwatch_to_naive": round(statistics.median(per_round_cb), 1),
        "ratio_naive_to_raw": round(statistics.median(b / a for b, a in zip(naive, raw)), 3),
        "ratios_per_round": {"c/a": [round(x, 3) for x in per_round_ca], "c/b": [round(x, 1) for x in per_round_cb]},
        "rounds": {
            "raw": [round(x) for x in raw],
            "borderwatch": [round(x) for x in bw],
            "naive": [round(x) for x in naive],
        },
        "cpu_per_message": median_cpu,
        "last_borderwatch_totals": totals,
    }


# -- 3. growth ----------------------------------------------------------------------------
_FILL = text(
    """
    WITH g AS (
        SELECT i,
               'bench-cam-' || lpad((i % 20)::text, 2, '0') AS sensor_id,
               'fill-' || CAST(:run AS text) || '-' || i AS event_id,
               CASE WHEN i <= CAST(:recent AS bigint) THEN now() - random() * interval '50 minutes'
                    ELSE now() - interval '1 hour' - random() * make_interval(days => CAST(:days AS int)) END AS observed_at,
               CAST(:x0 AS float8) + random() * (CAST(:x1 AS float8) - CAST(:x0 AS float8)) AS lon,
               CAST(:y0 AS float8) + random() * (CAST(:y1 AS float8) - CAST(:y0 AS float8)) AS lat,
               (ARRAY['person', 'vehicle', 'boat', 'animal'])[1 + i % 4] AS class
        FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i
    ),
    keys AS (
        INSERT INTO detection_keys (sensor_id, event_id, observed_at)
        SELECT sensor_id, event_id, observed_at FROM g
    )
    INSERT INTO detections (observed_at, sensor_id, agency_code, event_id, geom, located_by, class, confidence, raw)
    SELECT observed_at, sensor_id, 'TH-RTP', event_id, ST_SetSRID(ST_MakePoint(lon, lat), 4326), 'payload', class,
           0.8, jsonb_build_object('event_id', event_id, 'sensor_id', sensor_id, 'class', class)
    FROM g
    """
)


def fill_detections(engine, *, stored: int, target: int, recent: int, days: int, run: str, progress) -> None:
    """Grow the detections table from ``stored`` to ``target`` rows, set-based, in chunks."""
    if target <= stored:
        return
    task = progress.add_task(f"storing detections up to {target:,}", total=target - stored)
    chunk = 50_000
    x0, y0, x1, y1 = COP_BBOX
    for first in range(stored + 1, target + 1, chunk):
        last = min(target, first + chunk - 1)
        with session_scope(engine) as s:
            s.execute(
                _FILL,
                {
                    "run": run,
                    "recent": recent,
                    "days": days,
                    "first": first,
                    "last": last,
                    "x0": x0,
                    "x1": x1,
                    "y0": y0,
                    "y1": y1,
                },
            )
        progress.advance(task, last - first + 1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE detections"))
        conn.execute(text("VACUUM ANALYZE detection_keys"))
    progress.remove_task(task)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    """A real ``borderwatch api`` process on a free loopback port, and a bench operator's token."""

    def __init__(self, settings, engine) -> None:
        password = secrets.token_urlsafe(18)
        with session_scope(engine) as s:
            try:
                accounts.get_user(session=s, username=BENCH_USER)
                accounts.set_password(session=s, username=BENCH_USER, password=password)
            except NotFound:
                accounts.create_user(
                    session=s, username=BENCH_USER, agency_code="TH-RTP", role="operator", password=password
                )
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "api", "--host", "127.0.0.1", "--port", str(self.port)],
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.client = httpx.Client(base_url=self.base, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the API did not start: " + self.proc.stderr.read1().decode(errors="replace"))
            time.sleep(0.2)
        token = self.client.post("/api/v1/auth/token", data={"username": BENCH_USER, "password": password})
        token.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def cop_read(self, requests: int) -> dict:
        """The map's detections layer: last hour, border area, up to 10,000 features."""
        start = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
        params = {"bbox": ",".join(map(str, COP_BBOX)), "start": start, "limit": 10_000}
        self.client.get("/api/v1/detections", params=params).raise_for_status()  # warm
        times, features, size = [], 0, 0
        for _ in range(requests):
            t = time.perf_counter()
            r = self.client.get("/api/v1/detections", params=params)
            times.append(time.perf_counter() - t)
            r.raise_for_status()
            size = len(r.content)
            features = len(r.json()["features"])
        return {
            "features": features,
            "bytes": size,
            "requests": requests,
            "p50_ms": ms(percentile(times, 0.5)),
            "p95_ms": ms(percentile(times, 0.95)),
        }

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(20)


def growth(settings, engine, meter, args, progress) -> list[dict]:
    with session_scope(engine) as s:
        s.execute(text("TRUNCATE detections, detection_keys, alerts, alert_cooldowns, track_positions CASCADE"))
    run = secrets.token_hex(3)
    stored, rows = 0, []
    api = ApiServer(settings, engine)
    try:
        for size in args.growth:
            fill_detections(
                engine, stored=stored, target=size, recent=args.recent, days=args.days, run=run, progress=progress
            )
            with session_scope(engine) as s:
                stored = s.execute(text("SELECT count(*) FROM detections")).scalar_one()
            rate, _, cpu = ingest_bench.bench_borderwatch(settings, engine, args.messages, meter)
            latency = ingest_bench.bench_latency(settings, args.growth_rate, args.seconds)
            read = api.cop_read(args.requests)
            rows.append(
                {
                    "stored": size,
                    "ingest_msgs_per_s": round(rate),
                    "ingest_cpu": cpu,
                    "alert_p50_ms": latency["p50_ms"],
                    "alert_p99_ms": latency["p99_ms"],
                    "alerts": f"{latency['alerts_received']}/{latency['alerts_expected']}",
                    "cop_read": read,
                }
            )
            with session_scope(engine) as s:
                stored = s.execute(text("SELECT count(*) FROM detections")).scalar_one()
    finally:
        api.close()
    return rows


# -- report -------------------------------------------------------------------------------
def report(results: dict) -> None:
    out = Console(width=140)
    t = results.get("throughput")
    if t:
        cpu = t["cpu_per_message"]
        table = Table(
            title=f"Ingest throughput, median of {len(t['rounds']['raw'])} rounds (same broker, same database)"
        )
        for col in ("pipeline", "msg/s", "vs raw", "Python µs/msg", "PostgreSQL µs/msg", "Mosquitto µs/msg"):
            table.add_column(col, justify="left" if col == "pipeline" else "right")
        for key, label, ratio in (
            ("raw", "(a) raw paho QoS 1, count only", "1.00"),
            ("naive", "(b) naive: INSERT + ST_Intersects + commit per message", f"{t['ratio_naive_to_raw']:.3f}"),
            (
                "borderwatch",
                "(c) Borderwatch ingest (micro-batches, set-based SQL)",
                f"{t['ratio_borderwatch_to_raw']:.3f}",
            ),
        ):
            c = cpu.get(key, {})
            table.add_row(
                label,
                f"{t[key + '_msgs_per_s']:,}",
                ratio,
                str(c.get("python_us", "")),
                str(c.get("postgres_us", "")),
                str(c.get("mosquitto_us", "")),
            )
        out.print(table)
        out.print(
            f"c/a = {t['ratio_borderwatch_to_raw']}, c/b = {t['ratio_borderwatch_to_naive']} "
            f"(per round c/a {t['ratios_per_round']['c/a']})"
        )
    lat = results.get("latency")
    if lat:
        table = Table(title="Publish -> committed alert (crossing alerts, separate worker process)")
        for col in ("rate msg/s", "achieved", "alerts", "p50 ms", "p99 ms", "max ms"):
            table.add_column(col, justify="right")
        for r in lat:
            table.add_row(
                f"{r['rate']:,}",
                f"{r['achieved_rate']:,}",
                f"{r['alerts_received']}/{r['alerts_expected']}",
                str(r["p50_ms"]),
                str(r["p99_ms"]),
                str(r["max_ms"]),
            )
        out.print(table)
    g = results.get("growth")
    if g:
        table = Table(title="Growth: the same measures as the stored detections grow")
        for col in (
            "stored detections",
            "ingest msg/s",
            "PostgreSQL µs/msg",
            "alert p50 / p99 ms",
            "COP read features",
            "COP read p50 / p95 ms",
        ):
            table.add_column(col, justify="right")
        for r in g:
            table.add_row(
                f"{r['stored']:,}",
                f"{r['ingest_msgs_per_s']:,}",
                str(r["ingest_cpu"].get("postgres_us")),
                f"{r['alert_p50_ms']} / {r['alert_p99_ms']}",
                f"{r['cop_read']['features']:,}",
                f"{r['cop_read']['p50_ms']} / {r['cop_read']['p95_ms']}",
            )
        out.print(table)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=50_000,
        help="stream size for raw and Borderwatch ingest (long enough that the pipeline's own "
        "depth, the last batch's way through the database, weighs little)",
    )
    parser.add_argument("--naive-messages", type=int, default=2_000, help="stream size for the naive pipeline")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds (medians are reported)")
    parser.add_argument("--rates", default="500,2000,5000", help="publish rates of the latency runs (msg/s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each latency run")
    parser.add_argument("--growth", default="10000,100000,1000000", help="stored detections of the growth steps")
    parser.add_argument("--growth-rate", type=int, default=2_000, help="latency rate used in the growth steps")
    parser.add_argument("--recent", type=int, default=10_000, help="detections in the last hour (the map's read)")
    parser.add_argument("--days", type=int, default=20, help="the older detections spread over this many days")
    parser.add_argument("--requests", type=int, default=20, help="map reads per growth step")
    parser.add_argument("--units", type=int, default=10_000, help="patrol units of the dispatch part")
    parser.add_argument("--incidents", type=int, default=200, help="incidents of the dispatch part")
    parser.add_argument("--map-rounds", type=int, default=5, help="page loads of the map part")
    parser.add_argument(
        "--only",
        choices=["throughput", "latency", "growth", "dispatch", "map"],
        action="append",
        help="run only these parts (repeatable)",
    )
    args = parser.parse_args(argv)
    args.rates = [int(x) for x in args.rates.split(",") if x]
    args.growth = sorted(int(x) for x in args.growth.split(",") if x)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    parts = set(args.only or ["throughput", "latency", "growth", "dispatch", "map"])
    settings = get_settings()
    migrate_database(settings.owner_url())
    engine = make_engine(settings.owner_url())  # resets and reads as the owner; the services run as their roles
    ingest_bench.prepare(settings, engine)
    meter = CpuMeter(settings.database_url, settings.mosquitto_dir or None)
    results: dict = {}
    with Progress(console=console) as progress:
        steps = (3 * args.rounds if "throughput" in parts else 0) + (len(args.rates) if "latency" in parts else 0)
        task = progress.add_task("benchmark", total=steps + (len(args.growth) if "growth" in parts else 0))
        if "throughput" in parts:
            results["throughput"] = throughput(settings, engine, meter, args, progress, task)
        if "latency" in parts:
            results["latency"] = []
            for rate in args.rates:
                results["latency"].append(ingest_bench.bench_latency(settings, rate, args.seconds))
                progress.advance(task)
        if "growth" in parts:
            results["growth"] = growth(settings, engine, meter, args, progress)
            progress.advance(task, len(args.growth))
    if "dispatch" in parts:
        results["dispatch"] = dispatch_bench.measure(
            settings, engine, units=args.units, incidents=args.incidents, rounds=3, seed=7
        )
    if "map" in parts:
        results["map"] = maps_bench.measure(settings, engine, min(args.recent, 10_000), args.map_rounds)
    report(results)
    if "dispatch" in results:
        dispatch_bench.report(results["dispatch"])
    if "map" in results:
        maps_bench.report(results["map"], args.map_rounds)
    print("BENCH " + json.dumps(results))


if __name__ == "__main__":
    main()
