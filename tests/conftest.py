"""Fixtures on the real services: the project-local PostGIS and Mosquitto of the test run dir.

`make test` starts them (`borderwatch services up` with BW_RUN_DIR=.run/test). The session
resets the test database through Alembic (downgrade base, upgrade head), loads the shipped
borders once, and registers test gateways with the broker. Tests that only touch the
database run inside a transaction that is rolled back; end-to-end tests commit through the
ingest worker and use their own gateways and sensors, so they cannot see each other's data.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.settings import REPO_ROOT, Settings, get_settings
from tests.factories import Factory, World

_base = Settings()
if not _base.test_database_url or not _base.mqtt_url:
    pytest.exit("no test services: run `make test` (it starts PostGIS and Mosquitto first)", returncode=2)
# Everything in this run, subprocesses included, uses the test database, as the role that owns
# it (the tests reset it through Alembic); tests of the runtime roles connect as them explicitly
# (runtime_urls).
os.environ["BW_DATABASE_URL"] = _base.test_database_url
os.environ["BW_OWNER_DATABASE_URL"] = _base.test_database_url
os.environ["BW_INGEST_DATABASE_URL"] = _base.test_database_url
os.environ.setdefault("BW_JWT_SECRET", secrets.token_urlsafe(48))
# The tests' webhook receivers listen on loopback, which a deployment refuses unless allowed.
os.environ.setdefault("BW_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
get_settings.cache_clear()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    from alembic import command

    from cli.schema import alembic_config

    eng = create_engine(settings.database_url, pool_pre_ping=True)
    config = alembic_config(settings.database_url)
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    from core.db import session_scope
    from geo import service

    with session_scope(eng) as session:
        service.load_shipped_borders(session=session, buffer_m=settings.border_buffer_m)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def runtime_urls(engine: Engine) -> dict[str, str]:
    """URLs of the API's and the ingest worker's roles on the test database (``api``, ``ingest``),
    with the passwords `borderwatch services up` gave them; skips without separate roles."""
    from sqlalchemy.engine import make_url

    test_db = make_url(_base.test_database_url).database
    urls = {}
    for name, url in (("api", _base.database_url), ("ingest", _base.ingest_database_url)):
        parsed = make_url(url) if url else None
        if parsed is None or parsed.username == make_url(_base.test_database_url).username:
            pytest.skip("the test services have no separate runtime roles (run `borderwatch services up`)")
        urls[name] = parsed.set(database=test_db).render_as_string(hide_password=False)
    return urls


@contextmanager
def rolled_back_session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back at the end (savepoints for the code's own commits)."""
    connection = engine.connect()
    outer = connection.begin()
    sess = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield sess
    finally:
        sess.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test (savepoints for the code's own commits)."""
    with rolled_back_session(engine) as sess:
        yield sess


@pytest.fixture
def sensor(session: Session) -> str:
    """A Thai camera near Sadao (its gateway too) registered in the test's rolled-back session."""
    from sensors import service
    from sensors.schemas import GatewayCreate, SensorCreate

    gw_id = unique("gw")
    service.create_gateway(session=session, gateway_in=GatewayCreate(id=gw_id, agency_code="TH-RTP"))
    sensor_id = unique("cam")
    service.create_sensor(
        session=session, sensor_in=SensorCreate(id=sensor_id, gateway_id=gw_id, kind="camera", lon=100.42, lat=6.6)
    )
    session.flush()
    return sensor_id


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class TestGateway:
    id: str
    agency: str
    password: str
    sensors: dict[str, tuple[float, float]]


@pytest.fixture(scope="session")
def make_gateway(engine: Engine, settings: Settings) -> Callable[..., TestGateway]:
    """Register (committed) a gateway with sensors and publish its credentials to the broker; ``range_m``:
    the sensors' own range (default: their kind's)."""
    from broker import service as access
    from core.db import session_scope
    from sensors import service
    from sensors.schemas import GatewayCreate, SensorCreate

    def make(
        agency: str = "TH-RTP",
        sensors: dict[str, tuple[float, float]] | None = None,
        kind: str = "camera",
        range_m: float | None = None,
    ) -> TestGateway:
        gateway_id = unique("gw")
        sensors = sensors or {unique("cam"): (100.42, 6.63)}
        with session_scope(engine) as s:
            _, password = service.create_gateway(session=s, gateway_in=GatewayCreate(id=gateway_id, agency_code=agency))
            for sensor_id, (lon, lat) in sensors.items():
                service.create_sensor(
                    session=s,
                    sensor_in=SensorCreate(
                        id=sensor_id, gateway_id=gateway_id, kind=kind, lon=lon, lat=lat, coverage_radius_m=range_m
                    ),
                )
        with session_scope(engine) as s:
            access.sync_broker(session=s, settings=settings)
        wait_for_broker_login(settings, gateway_id, password)
        return TestGateway(gateway_id, agency, password, sensors)

    return make


def detection(sensor_id: str, lon: float | None, lat: float | None, **extra) -> dict:
    body = {
        "event_id": extra.pop("event_id", uuid.uuid4().hex),
        "sensor_id": sensor_id,
        "observed_at": extra.pop("observed_at", datetime.now(timezone.utc).isoformat()),
        "class": extra.pop("object_class", "person"),
        "confidence": extra.pop("confidence", 0.9),
    }
    if lon is not None:
        body["lon"], body["lat"] = lon, lat
    body.update(extra)
    return body


class IngestProcess:
    """`borderwatch ingest` as a real subprocess, so it can be killed and restarted."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.proc: subprocess.Popen | None = None
        self.log_path = REPO_ROOT / ".run" / "test" / f"{client_id}.log"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "ingest", "--client-id", self.client_id],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if b"connected to" in self.log_path.read_bytes().split(b"--- start")[-1]:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"ingest exited: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError("ingest worker did not connect within 30 s")

    def mark(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(b"\n--- start\n")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)


@pytest.fixture(scope="session")
def ingest(engine: Engine) -> Iterator[IngestProcess]:
    worker = IngestProcess("bw-ingest-test")
    worker.mark()
    worker.start()
    yield worker
    worker.stop()


def mqtt_client(settings: Settings, username: str, password: str, client_id: str | None = None):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port, _, _ = settings.mqtt_parts()
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id or unique("t"), protocol=mqtt.MQTTv5
    )
    client.username_pw_set(username, password)
    client.max_inflight_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    return client


def broker_accepts(settings: Settings, username: str, password: str) -> bool:
    """Whether the broker answers a connection with these credentials with success (CONNACK)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port, _, _ = settings.mqtt_parts()
    answer: dict[str, bool] = {}
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=unique("probe"), protocol=mqtt.MQTTv5
    )
    client.username_pw_set(username, password)
    client.on_connect = lambda c, u, flags, reason, props: answer.update(ok=not reason.is_failure)
    client.on_disconnect = lambda c, u, flags, reason, props: answer.setdefault("ok", False)
    try:
        client.connect(host, port, keepalive=10)
        deadline = time.monotonic() + 5
        while "ok" not in answer and time.monotonic() < deadline:
            client.loop(timeout=0.05)
    finally:
        client.disconnect()
        client.loop(timeout=0.01)
    return answer.get("ok", False)


def wait_for_broker_login(settings: Settings, username: str, password: str, timeout: float = 10.0) -> None:
    """Wait until the broker takes new credentials: it re-reads its password file and ACL (both
    at once) when ``sync_broker`` sends it SIGHUP, a moment later."""
    wait_for(lambda: broker_accepts(settings, username, password), timeout=timeout, interval=0.05)


def mosquitto_pub(
    settings: Settings, gateway: TestGateway, topic: str, payload: bytes | str | dict
) -> subprocess.CompletedProcess:
    """Publish with Mosquitto's own client (QoS 1, MQTT v5)."""
    host, port, _, _ = settings.mqtt_parts()
    if isinstance(payload, dict):
        payload = orjson.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            host,
            "-p",
            str(port),
            "-V",
            "5",
            "-q",
            "1",
            "-u",
            gateway.id,
            "-P",
            gateway.password,
            "-i",
            unique("pub"),
            "-t",
            topic,
            "-s",
        ],
        input=payload,
        capture_output=True,
        timeout=20,
    )


def wait_for(check: Callable[[], object], timeout: float = 20.0, interval: float = 0.05):
    """Poll until ``check()`` is truthy; returns its value or fails the test with the last value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s (last value: {value!r})")


def scalar(engine: Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


# The API on the test transaction -------------------------------------------------------------


@pytest.fixture
def db(session: Session) -> Session:
    """The ``session`` fixture under the name the API tests use: one rolled-back transaction per test."""
    return session


@pytest.fixture
def jwt_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A signing key of the test's own (suites that issue and forge tokens use it on every test)."""
    secret = secrets.token_urlsafe(48)
    monkeypatch.setenv("BW_JWT_SECRET", secret)
    monkeypatch.setenv("BW_ACCESS_TOKEN_MINUTES", "60")
    get_settings.cache_clear()
    yield secret
    get_settings.cache_clear()


@functools.cache
def shared_app() -> FastAPI:
    """One application for the run: building it (every router, every route) costs more than most
    tests. It holds no state of its own; each test gets fresh dependency overrides."""
    from api.app import create_app

    return create_app()


def app_on(db: Session, app: FastAPI) -> FastAPI:
    """``app`` on the test transaction; work after the response (broker files, live feed) too."""
    from api.deps import get_session, get_session_factory

    def test_session() -> Iterator[Session]:
        # Same contract as get_session: commit (here: release the savepoint) or roll back.
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise

    @contextmanager
    def test_scope() -> Iterator[Session]:
        yield db
        db.commit()

    app.dependency_overrides = {get_session: test_session, get_session_factory: lambda: test_scope}
    return app


@pytest.fixture
def app(db: Session) -> Iterator[FastAPI]:
    app = app_on(db, shared_app())
    yield app
    app.dependency_overrides = {}


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def factory(db: Session) -> Factory:
    return Factory(db)


@pytest.fixture
def world(factory: Factory, db: Session) -> World:
    return World(factory, db)


# A real API server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ApiServer:
    base_url: str
    proc: subprocess.Popen
    log_path: Path


@contextmanager
def run_api_server(log_name: str = "api-browser.log", env: dict[str, str] | None = None) -> Iterator[ApiServer]:
    """``uvicorn api.app:app`` as a subprocess on a free loopback port, with ``env`` on top of ours;
    stopped when the block ends."""
    port = free_port()
    log_path = REPO_ROOT / ".run" / "test" / log_name
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
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
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the API server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the API server did not answer /health within 30 s")
        time.sleep(0.1)
    try:
        yield ApiServer(base, proc, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def api_server(engine) -> Iterator[ApiServer]:
    """``uvicorn api.app:app`` as a subprocess on a free loopback port."""
    with run_api_server() as server:
        yield server
