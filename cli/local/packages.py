"""The system packages the local services need (PostgreSQL, PostGIS, Mosquitto, python3-venv),
installed through ``scripts/install-system.sh`` when one is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rich.console import Console

from cli.local.layout import REPO_ROOT, ServiceError, _is_root, _which
from cli.local.postgres import _pg_bindir, _pg_major, _postgis_control

INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-system.sh"


def _missing_components() -> list[str]:
    missing: list[str] = []
    bindir = _pg_bindir()
    if bindir is None:
        missing.append("PostgreSQL server (initdb/pg_ctl under /usr/lib/postgresql/<major>/bin)")
    elif not _postgis_control(bindir).exists():
        missing.append(f"PostGIS 3 for PostgreSQL {_pg_major(bindir)} ({_postgis_control(bindir)})")
    for name in ("mosquitto", "mosquitto_passwd", "mosquitto_pub", "mosquitto_sub"):
        if _which(name) is None:
            missing.append(name)
    # Debian's python3-venv is what puts ensurepip into /usr/bin/python3's stdlib.
    sys_py = Path("/usr/bin/python3")
    if (
        not sys_py.exists()
        or subprocess.run([str(sys_py), "-c", "import ensurepip, venv"], capture_output=True, cwd="/").returncode != 0
    ):
        missing.append("python3-venv (/usr/bin/python3 -m venv)")
    return missing


def _ensure_system_packages(con: Console) -> None:
    missing = _missing_components()
    if not missing:
        return
    con.print(f"[yellow]Missing system packages:[/] {', '.join(missing)}")
    if not INSTALL_SCRIPT.exists():
        raise ServiceError(f"{INSTALL_SCRIPT} is missing; cannot install: {', '.join(missing)}")
    con.print(f"Running {INSTALL_SCRIPT} ...")
    lines: list[str] = []
    proc = subprocess.Popen(
        ["bash", str(INSTALL_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd="/",
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        con.print(f"  {line.rstrip()}", markup=False, highlight=False)
    rc = proc.wait()
    if rc != 0:
        hint = next((ln.strip() for ln in lines if ln.strip().startswith("sudo ")), None)
        if not _is_root():
            raise ServiceError(
                "System packages are missing and installing them needs root. Run:\n  "
                + (hint or f"sudo {INSTALL_SCRIPT}")
                + "\nthen `borderwatch services up` again."
            )
        raise ServiceError(f"{INSTALL_SCRIPT} failed (exit {rc}):\n" + "\n".join(lines[-30:]))
    still = _missing_components()
    if still:
        raise ServiceError(f"Still missing after {INSTALL_SCRIPT}: {', '.join(still)}")
