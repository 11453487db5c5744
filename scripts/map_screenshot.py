#!/usr/bin/env python
"""Screenshot a Borderwatch map page as an operator sees it (for the README's docs/cop.png).

Signs in through the login form of a running Borderwatch (``make run``), opens the page in
Debian's Chromium (headless, driven by Playwright; nothing is downloaded), waits until the live
layers have loaded, and writes a PNG. Requests to any other host are blocked and reported.

Run: .venv/bin/python scripts/map_screenshot.py --user th-operator --out docs/cop.png   (see --help)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sign in to a running Borderwatch and screenshot a map page.")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="where the API runs")
    parser.add_argument("--user", default="th-operator", help="operator to sign in as")
    parser.add_argument(
        "--credentials",
        type=Path,
        default=ROOT / ".run" / "demo-users.json",
        help="JSON file of username -> password (written by `borderwatch seed-demo`)",
    )
    parser.add_argument("--path", default="/maps/cop", help="page to open after signing in")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "cop.png", help="PNG to write")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait after the layers loaded")
    args = parser.parse_args(argv)
    console = Console()

    from playwright.sync_api import sync_playwright

    password = json.loads(args.credentials.read_text())[args.user]
    local_host = urlsplit(args.base_url).hostname
    outside: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname == local_host:
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": args.width, "height": args.height})
        context.route("**/*", route)
        page = context.new_page()
        with console.status(f"signing in as {args.user} at {args.base_url}"):
            page.goto(args.base_url + "/login")
            page.fill("input[name=username]", args.user)
            page.fill("input[name=password]", password)
            with page.expect_navigation():
                page.click("button[type=submit]")
        with console.status(f"loading {args.path}"):
            page.goto(args.base_url + args.path)
            page.wait_for_selector('body[data-bw-live="ok"]', timeout=30_000)
            page.wait_for_timeout(args.settle * 1000)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
        browser.close()
    console.print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    if outside:
        console.print(f"[red]blocked requests to other hosts:[/] {outside}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
