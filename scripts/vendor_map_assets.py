#!/usr/bin/env python
"""Vendor the map pages' scripts, style sheets, fonts and images into maps/static/vendor/.

Steps:
  1. ``npm ci`` in scripts/map-assets (versions pinned by its package-lock.json).
  2. Copy the files the pages load, with each package's licence, into
     ``maps/static/vendor/<package>@<version>/`` (same relative layout as in the package, so
     the style sheets' relative ``url(...)`` references keep working).
  3. Write ``maps/static/vendor/MANIFEST.json``: package, version, licence, files and their
     SHA-256, which ``maps/assets.py`` reads to build the local URLs.

The result is committed: serving the maps needs neither npm nor a network.

Run: .venv/bin/python scripts/vendor_map_assets.py   (see --help)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "scripts" / "map-assets"
DEFAULT_OUT = ROOT / "maps" / "static" / "vendor"

# Per npm package: the files the pages use (paths inside the package) and its licence file(s).
PACKAGES: dict[str, dict[str, list[str]]] = {
    "leaflet": {
        "files": [
            "dist/leaflet.js",
            "dist/leaflet.css",
            "dist/images/layers.png",
            "dist/images/layers-2x.png",
            "dist/images/marker-icon.png",
            "dist/images/marker-icon-2x.png",
            "dist/images/marker-shadow.png",
        ],
        "licence": ["LICENSE"],
    },
    "leaflet.markercluster": {
        "files": ["dist/leaflet.markercluster.js", "dist/MarkerCluster.css", "dist/MarkerCluster.Default.css"],
        "licence": ["MIT-LICENCE.txt"],
    },
    "leaflet.awesome-markers": {
        "files": [
            "dist/leaflet.awesome-markers.js",
            "dist/leaflet.awesome-markers.css",
            "dist/images/markers-shadow.png",
            "dist/images/markers-shadow@2x.png",
            "dist/images/markers-soft.png",
            "dist/images/markers-soft@2x.png",
        ],
        "licence": ["LICENSE"],
    },
    "leaflet.heat": {
        "files": ["dist/leaflet-heat.js"],
        "licence": ["LICENSE"],
    },
    "jquery": {
        "files": ["dist/jquery.min.js"],
        "licence": ["LICENSE.txt"],
    },
    "bootstrap": {
        "files": ["dist/js/bootstrap.bundle.min.js", "dist/css/bootstrap.min.css"],
        "licence": ["LICENSE"],
    },
    # Browsers that read WOFF2 (all current ones) never ask for the TrueType fallbacks.
    "@fortawesome/fontawesome-free": {
        "files": [
            "css/all.min.css",
            "webfonts/fa-brands-400.woff2",
            "webfonts/fa-regular-400.woff2",
            "webfonts/fa-solid-900.woff2",
            "webfonts/fa-v4compatibility.woff2",
        ],
        "licence": ["LICENSE.txt"],
    },
}


def vendor_dir_name(package: str, version: str) -> str:
    """``@fortawesome/fontawesome-free`` 6.2.0 -> ``fontawesome-free@6.2.0``."""
    return f"{package.rsplit('/', 1)[-1]}@{version}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _strip_source_map(data: bytes) -> bytes:
    # The .map files are not shipped; without the comment no developer tool asks for them.
    lines = data.rstrip(b"\n").split(b"\n")
    if lines and (lines[-1].startswith(b"//# sourceMappingURL=") or lines[-1].startswith(b"/*# sourceMappingURL=")):
        lines = lines[:-1]
    return b"\n".join(lines) + b"\n"


def build(out: Path, console: Console, skip_npm: bool = False) -> list[dict]:
    if not skip_npm:
        console.print(f"[bold]npm ci[/] in {NODE_DIR.relative_to(ROOT)}")
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)
    modules = NODE_DIR / "node_modules"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest = []
    for package, spec in PACKAGES.items():
        meta = json.loads((modules / package / "package.json").read_text())
        version = meta["version"]
        target = out / vendor_dir_name(package, version)
        files = {}
        for rel in spec["files"] + spec["licence"]:
            src = modules / package / rel
            if not src.is_file():
                raise SystemExit(f"{package}@{version} has no {rel}")
            dst = target / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            data = src.read_bytes()
            if rel.endswith((".js", ".css")):
                data = _strip_source_map(data)
            dst.write_bytes(data)
            files[rel] = _sha256(dst)
        manifest.append(
            {
                "package": package,
                "version": version,
                "licence": meta.get("license") or "see " + ", ".join(spec["licence"]),
                "licence_files": spec["licence"],
                "homepage": meta.get("homepage", ""),
                "dir": target.name,
                "files": files,
            }
        )
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Vendor Leaflet, its plugins, jQuery, Bootstrap and Font Awesome (npm, pinned) into "
        "maps/static/vendor with their licences, so the map pages need no outside address."
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument(
        "--skip-npm", action="store_true", help="use scripts/map-assets/node_modules as it is (no npm ci)"
    )
    args = parser.parse_args(argv)
    console = Console()
    manifest = build(args.out, console, skip_npm=args.skip_npm)
    table = Table(title=f"vendored into {args.out}")
    for col in ("package", "version", "licence", "files", "bytes"):
        table.add_column(col)
    for entry in manifest:
        size = sum((args.out / entry["dir"] / f).stat().st_size for f in entry["files"])
        table.add_row(entry["package"], entry["version"], entry["licence"], str(len(entry["files"])), f"{size:,}")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
