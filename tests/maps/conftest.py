"""Browser tests: a real API server (uvicorn on a free loopback port, against the test database),
the real ingest worker and broker, and Debian's Chromium driven headless by Playwright.

Chromium is the system package (`scripts/install-system.sh --test-tools`); Playwright only
drives it (`executable_path`), it downloads nothing. Every request the browser makes goes
through a route that lets loopback and data:/blob: addresses through and aborts and records
anything else, so a test can assert that no request left the machine.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core.settings import REPO_ROOT

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
SCREENSHOTS = REPO_ROOT / ".run" / "test" / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-system.sh --test-tools` as root")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Operator:
    agency: str
    username: str
    password: str


@pytest.fixture
def operator(engine) -> Operator:
    """A committed agency of its own (so the maps show only this test's data) and an operator."""
    from accounts import service
    from core.db import session_scope

    agency = f"TH-M{uuid.uuid4().hex[:8].upper()}"
    username = f"op-{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(16)
    with session_scope(engine) as s:
        service.create_agency(session=s, code=agency, country="TH", name=f"Map test agency {agency}")
        service.create_user(session=s, username=username, agency_code=agency, role="operator", password=password)
    return Operator(agency, username, password)


def _is_local(url: str) -> bool:
    if url.startswith(("data:", "blob:", "about:")):
        return True
    parts = urlsplit(url)
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOCAL_HOSTS


@dataclass
class BrowserPage:
    page: object
    base_url: str
    requests: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def login(self, operator: Operator, expect_path: str = "/maps/cop") -> None:
        self.page.goto(self.base_url + "/login")
        self.page.fill("input[name=username]", operator.username)
        self.page.fill("input[name=password]", operator.password)
        with self.page.expect_navigation():
            self.page.click("button[type=submit]")
        assert urlsplit(self.page.url).path == expect_path, self.page.url

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000, "the screenshot is (nearly) empty"
        return path

    def assert_stayed_local(self) -> None:
        assert self.requests, "the browser made no requests at all"
        assert not self.outside, f"requests left the machine: {self.outside}"
        assert not self.failed, f"requests failed: {self.failed}"


@pytest.fixture
def web(browser, api_server) -> Iterator[BrowserPage]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, service_workers="block")
    page = context.new_page()
    bp = BrowserPage(page, api_server.base_url)

    def route(r):
        url = r.request.url
        bp.requests.append(url)
        if _is_local(url):
            r.continue_()
        else:
            bp.outside.append(url)
            r.abort()

    context.route("**/*", route)
    # Requests cancelled by leaving a page (net::ERR_ABORTED) are not failures; outside ones are
    # aborted by the route above and recorded there.
    page.on(
        "requestfailed",
        lambda req: (
            bp.failed.append(f"{req.url} {req.failure}")
            if _is_local(req.url) and "ERR_ABORTED" not in (req.failure or "")
            else None
        ),
    )
    page.on("response", lambda resp: bp.failed.append(f"{resp.url} HTTP {resp.status}") if resp.status >= 400 else None)
    page.on("console", lambda msg: bp.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: bp.console_errors.append(str(exc)))
    yield bp
    context.close()
