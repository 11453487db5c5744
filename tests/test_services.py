"""The project-local PostgreSQL/PostGIS and Mosquitto of cli/local.py.

The shared instance is the one `make test` started with `services up` (started here if
it is not running). It is never stopped here: up/down is exercised on a separate,
throw-away instance (its own BW_RUN_DIR, so its own ports, data and processes).
"""

from __future__ import annotations

import io
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from rich.console import Console

from cli import local as services

MOSQUITTO_SUB = shutil.which("mosquitto_sub")
MOSQUITTO_PUB = shutil.which("mosquitto_pub")

pytestmark = pytest.mark.timeout(180)


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def _read_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            out[k] = v
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    st = Path(f"/proc/{pid}/stat")
    return not (st.exists() and st.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def shared():
    if services._external_urls():
        pytest.skip("BW_DATABASE_URL/BW_MQTT_URL point at external servers")
    info = services.status()
    if not (info["postgres"]["running"] and info["mosquitto"]["running"]):
        services.up(console=_quiet())  # normally done by `make test` already
        info = services.status()
    env = _read_env(Path(info["run_dir"]) / "services.env")
    return info, env


def _mqtt_creds(url: str) -> tuple[str, str, int]:
    u = urlsplit(url)
    return u.username, u.password, u.port


def _sub(port: int, topic: str, *args: str, wait: int = 3, count: int = 1) -> subprocess.Popen:
    return subprocess.Popen(
        [
            MOSQUITTO_SUB,
            "-V",
            "5",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-t",
            topic,
            "-C",
            str(count),
            "-W",
            str(wait),
            "-v",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _pub(port: int, topic: str, message: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MOSQUITTO_PUB, "-V", "5", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-m", message, *args],
        capture_output=True,
        text=True,
        timeout=10,
    )


# ----------------------------------------------------------------------------- shared instance


def test_status_reports_both_running_on_recorded_ports(shared):
    info, env = shared
    st = services.status()
    pg_port = urlsplit(env["BW_DATABASE_URL"]).port
    mq_port = urlsplit(env["BW_MQTT_URL"]).port
    assert st["postgres"]["running"] and st["mosquitto"]["running"]
    assert st["postgres"]["port"] == pg_port == urlsplit(env["BW_TEST_DATABASE_URL"]).port
    assert st["mosquitto"]["port"] == mq_port == urlsplit(env["BW_MQTT_API_URL"]).port
    assert _listening(pg_port) and _listening(mq_port)
    assert _alive(st["postgres"]["pid"]) and _alive(st["mosquitto"]["pid"])
    assert env["BW_MOSQUITTO_DIR"] == st["mosquitto"]["data_dir"] == str(services.mosquitto_dir())
    assert "@" in st["postgres"]["url"] and ":" not in urlsplit(st["postgres"]["url"]).netloc.split("@")[0]
    # print_status renders without error
    services.print_status(st, _quiet())


def test_processes_run_as_the_right_users_in_reachable_dirs(shared):
    st = services.status()
    if os.geteuid() == 0:
        assert st["postgres"]["user"] == "postgres"
        assert st["mosquitto"]["user"] == "mosquitto"
        assert st["base_dir"].startswith("/var/lib/borderwatch/")
        for path, owner in (
            (Path(st["postgres"]["data_dir"]).parent, "postgres"),
            (Path(st["mosquitto"]["data_dir"]), "mosquitto"),
        ):
            s = path.stat()
            assert stat.S_IMODE(s.st_mode) == 0o700, path
            assert pwd.getpwuid(s.st_uid).pw_name == owner, path
    else:
        assert Path(st["postgres"]["data_dir"]).is_relative_to(services.run_dir())
        assert Path(st["mosquitto"]["data_dir"]).is_relative_to(services.run_dir())


def test_secret_files_are_private(shared):
    info, _ = shared
    rd = Path(info["run_dir"])
    for p in (rd / "services.env", rd / "services.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    mdir = services.mosquitto_dir()
    for name in ("passwd", "acl", "service.passwd", "service.acl", "mosquitto.conf"):
        p = mdir / name
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    acl = (mdir / "service.acl").read_text()
    # Each service user only the topics it uses; neither may write a gateway's topics.
    assert "user bw-ingest\ntopic read borderwatch/v1/gw/#\ntopic write borderwatch/v1/alerts/+\n" in acl
    assert (
        "user bw-api\ntopic readwrite borderwatch/v1/alerts/+\ntopic write borderwatch/v1/units/+/+/taskings\n" in acl
    )
    assert "borderwatch/#" not in acl
    assert (mdir / "acl").read_text().startswith(acl.rstrip("\n"))
    conf = (mdir / "mosquitto.conf").read_text()
    for line in (
        "allow_anonymous false",
        "persistence true",
        "max_inflight_messages 0",
        "max_queued_messages 1000000",
        "persistent_client_expiration 7d",
        "autosave_interval 30",
    ):
        assert re.search(rf"^{re.escape(line)}$", conf, re.M), line
    assert re.search(r"^listener \d+ 127\.0\.0\.1$", conf, re.M)


def test_up_again_is_idempotent(shared):
    info, env = shared
    rd = Path(info["run_dir"])
    before_env = (rd / "services.env").read_text()
    before_passwd = (services.mosquitto_dir() / "passwd").read_text()
    before_service_passwd = (services.mosquitto_dir() / "service.passwd").read_text()
    before = services.status()

    after = services.up(console=_quiet())

    assert after["postgres"]["pid"] == before["postgres"]["pid"]
    assert after["mosquitto"]["pid"] == before["mosquitto"]["pid"]
    assert after["postgres"]["port"] == before["postgres"]["port"]
    assert after["mosquitto"]["port"] == before["mosquitto"]["port"]
    assert (rd / "services.env").read_text() == before_env  # same passwords, JWT secret, ports
    assert (services.mosquitto_dir() / "passwd").read_text() == before_passwd
    assert (services.mosquitto_dir() / "service.passwd").read_text() == before_service_passwd


def test_database_accepts_borderwatch_over_tcp_with_postgis(shared):
    psycopg = pytest.importorskip("psycopg")
    _, env = shared
    for key, role, dbname in (
        ("BW_DATABASE_URL", services.DB_API_ROLE, "borderwatch"),
        ("BW_INGEST_DATABASE_URL", services.DB_INGEST_ROLE, "borderwatch"),
        ("BW_OWNER_DATABASE_URL", "borderwatch", "borderwatch"),
        ("BW_TEST_DATABASE_URL", "borderwatch", "borderwatch_test"),
    ):
        url = env[key].replace("postgresql+psycopg://", "postgresql://", 1)
        assert urlsplit(url).hostname == "127.0.0.1"
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT current_user, current_database(), postgis_full_version(), "
                "current_setting('synchronous_commit'), current_setting('fsync'), "
                "(SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'), "
                "current_setting('max_connections'), current_setting('listen_addresses'), "
                "current_setting('wal_buffers')"
            ).fetchone()
        assert row[0] == role and row[1] == dbname
        assert row[2].startswith("POSTGIS=")
        # shared_buffers: a quarter of this machine's memory, 256 MB to 4 GB
        assert row[3:] == ("on", "on", services._shared_buffers_mb(), "100", "127.0.0.1", "64MB")
        assert 256 <= row[5] <= 4096


def test_database_rejects_wrong_password(shared):
    psycopg = pytest.importorskip("psycopg")
    _, env = shared
    u = urlsplit(env["BW_DATABASE_URL"])
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            f"postgresql://borderwatch:wrong-{uuid.uuid4().hex}@127.0.0.1:{u.port}/borderwatch", connect_timeout=5
        )


@pytest.mark.skipif(not (MOSQUITTO_SUB and MOSQUITTO_PUB), reason="mosquitto-clients not installed")
class TestBroker:
    def test_rejects_anonymous(self, shared):
        _, env = shared
        _, _, port = _mqtt_creds(env["BW_MQTT_URL"])
        p = _sub(port, "borderwatch/#", wait=2)
        out, _ = p.communicate(timeout=10)
        assert p.returncode != 0
        assert "not authori" in out.lower()

    def test_rejects_wrong_password(self, shared):
        _, env = shared
        user, _, port = _mqtt_creds(env["BW_MQTT_URL"])
        p = _sub(port, "borderwatch/#", "-u", user, "-P", "not-the-password", wait=2)
        out, _ = p.communicate(timeout=10)
        assert p.returncode != 0
        assert "not authori" in out.lower()
        r = _pub(port, "borderwatch/x", "x", "-u", "bw-api", "-P", "nope")
        assert r.returncode != 0

    @pytest.mark.parametrize("shared_sub", [False, True], ids=["plain", "share"])
    def test_api_receives_the_alerts_ingest_publishes(self, shared, shared_sub):
        # The one topic both service users have: the ingest worker writes alerts, the API reads them.
        _, env = shared
        iu, ipw, port = _mqtt_creds(env["BW_MQTT_URL"])
        au, apw, _ = _mqtt_creds(env["BW_MQTT_API_URL"])
        tag = uuid.uuid4().hex
        topic = f"borderwatch/v1/alerts/test-{tag}"
        sub_topic = f"$share/bw-test-{tag}/{topic}" if shared_sub else topic
        p = _sub(port, sub_topic, "-u", au, "-P", apw, "-q", "1", wait=10)
        deadline = time.monotonic() + 8
        # Publish until the subscriber (which may still be subscribing) got one and exited.
        while p.poll() is None and time.monotonic() < deadline:
            r = _pub(port, topic, f"hello-{tag}", "-u", iu, "-P", ipw, "-q", "1")
            assert r.returncode == 0, r.stdout + r.stderr
            time.sleep(0.2)
        out, _ = p.communicate(timeout=15)
        assert p.returncode == 0, out
        assert f"{topic} hello-{tag}" in out

    def test_acl_denies_topics_outside_borderwatch(self, shared):
        _, env = shared
        au, apw, port = _mqtt_creds(env["BW_MQTT_API_URL"])
        r = _pub(port, f"elsewhere/{uuid.uuid4().hex}", "x", "-u", au, "-P", apw, "-q", "1", "-d")
        # MQTT v5 PUBACK reason code 0x87 (135) = Not authorized.
        assert re.search(r"PUBACK \(Mid: ?\d+, RC:135\)", r.stdout + r.stderr), r.stdout + r.stderr

    def test_reload_broker_keeps_service_users(self, shared):
        _, env = shared
        pid = services.status()["mosquitto"]["pid"]
        assert services.reload_broker(console=_quiet()) is True
        assert services.status()["mosquitto"]["pid"] == pid
        iu, ipw, port = _mqtt_creds(env["BW_MQTT_URL"])
        r = _pub(port, "borderwatch/v1/alerts/test-reload", "x", "-u", iu, "-P", ipw, "-q", "1", "-d")
        assert r.returncode == 0 and "RC:135" not in r.stdout + r.stderr, r.stdout + r.stderr


# ----------------------------------------------------------------------------- no shared state


def _isolate(monkeypatch, tmp_path: Path) -> Path:
    rd = tmp_path / "run"
    monkeypatch.setenv("BW_RUN_DIR", str(rd))
    for key in ("BW_DATABASE_URL", "BW_MQTT_URL"):
        monkeypatch.delenv(key, raising=False)
    return rd


def test_external_servers_mean_nothing_to_do(monkeypatch, tmp_path):
    rd = _isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("BW_DATABASE_URL", "postgresql+psycopg://u:secret@db.example:5432/bw")
    monkeypatch.setenv("BW_MQTT_URL", "mqtt://u:secret@mq.example:1883")
    out = _quiet()
    info = services.up(console=out)
    assert info["external"] is True and "secret" not in str(info)
    assert services.reload_broker(console=out) is False
    assert not rd.exists()


def test_down_without_setup_is_a_no_op(monkeypatch, tmp_path):
    _isolate(monkeypatch, tmp_path)
    info = services.down(console=_quiet())
    assert not info["postgres"]["running"] and not info["mosquitto"]["running"]


def test_up_down_up_on_a_throwaway_instance_leaves_others_alone(shared, monkeypatch, tmp_path):
    shared_info, _ = shared
    now = services.status()
    shared_pids = (now["postgres"]["pid"], now["mosquitto"]["pid"])
    assert all(shared_pids)

    rd = _isolate(monkeypatch, tmp_path)
    base_dir = None
    try:
        first = services.up(console=_quiet())
        base_dir = Path(first["base_dir"])
        assert first["run_dir"] == str(rd)
        assert first["postgres"]["running"] and first["mosquitto"]["running"]
        mine = (first["postgres"]["pid"], first["mosquitto"]["pid"])
        assert set(mine).isdisjoint(shared_pids)
        assert first["postgres"]["port"] != shared_info["postgres"]["port"]
        assert first["mosquitto"]["port"] != shared_info["mosquitto"]["port"]
        assert first["base_dir"] != shared_info["base_dir"]
        env1 = (rd / "services.env").read_text()

        stopped = services.down(console=_quiet())
        assert not stopped["postgres"]["running"] and not stopped["mosquitto"]["running"]
        for pid in mine:
            assert not _alive(pid), f"throw-away pid {pid} still alive"
        for pid in shared_pids:
            assert _alive(pid), f"shared pid {pid} was stopped by the throw-away down()"
        assert _listening(shared_info["postgres"]["port"]) and _listening(shared_info["mosquitto"]["port"])
        assert services.down(console=_quiet())["postgres"]["running"] is False  # idempotent

        again = services.up(console=_quiet())
        assert again["postgres"]["running"] and again["mosquitto"]["running"]
        assert again["postgres"]["port"] == first["postgres"]["port"]
        assert again["mosquitto"]["port"] == first["mosquitto"]["port"]
        assert (rd / "services.env").read_text() == env1  # same passwords and secret
    finally:
        services.down(console=_quiet())
        if base_dir is not None and base_dir != rd and base_dir.parent == services.SYSTEM_BASE:
            shutil.rmtree(base_dir, ignore_errors=True)
    for pid in shared_pids:
        assert _alive(pid)


# ----------------------------------------------------------------------------- a path used before


def _wide() -> Console:
    return Console(file=io.StringIO(), width=400)


def test_a_run_dir_used_before_says_it_takes_over_the_data_until_purged(shared, monkeypatch, tmp_path):
    """A new clone at a path used before (root mode: the data outlives the run dir) is told which
    data it takes over and how to start afresh; `purge` stops its services and deletes that data."""
    now = services.status()
    shared_pids = (now["postgres"]["pid"], now["mosquitto"]["pid"])
    rd = _isolate(monkeypatch, tmp_path)
    base_dir = None
    try:
        first = services.up(console=_quiet())
        base_dir = Path(first["base_dir"])
        ports = (first["postgres"]["port"], first["mosquitto"]["port"])
        services.down(console=_quiet())
        shutil.rmtree(rd)  # the old clone is gone, its data stays where it was kept

        out = _wide()
        again = services.up(console=out)
        text = out.file.getvalue()
        assert again["postgres"]["running"] and again["mosquitto"]["running"]
        if base_dir != rd:  # root: /var/lib/borderwatch/<hash of the run dir>
            assert base_dir.parent == services.SYSTEM_BASE
            assert (again["postgres"]["port"], again["mosquitto"]["port"]) == ports
            assert "Recovered ports and passwords" in text
            assert "Existing data taken over" in text and str(base_dir) in text
            assert "borderwatch services purge --yes" in text and "make clean PURGE=1" in text
            quiet = _wide()
            services.up(console=quiet)  # said once, when the run dir takes the data over
            assert "Existing data taken over" not in quiet.file.getvalue()
        else:  # not root: the data went with the run dir
            assert "Existing data taken over" not in text

        targets = set(services.purge_targets())
        assert rd / "services.json" in targets and rd / "services.env" in targets
        assert (base_dir in targets) if base_dir != rd else {rd / "postgres", rd / "mosquitto"} <= targets
        pids = (again["postgres"]["pid"], again["mosquitto"]["pid"])
        result = services.purge(console=_quiet())
        assert set(result["removed"]) == {str(p) for p in targets}
        for pid in pids:
            assert not _alive(pid), f"pid {pid} still alive after purge"
        assert not base_dir.exists() or base_dir == rd
        assert not (rd / "services.json").exists() and not (rd / "postgres").exists()
        assert services.purge_targets() == []
        assert services.purge(console=_quiet())["removed"] == []  # nothing left: a no-op

        fresh = _wide()
        services.up(console=fresh)  # afresh: a new cluster, nothing to take over
        assert "Existing data taken over" not in fresh.file.getvalue()
        assert "Recovered ports and passwords" not in fresh.file.getvalue()
    finally:
        services.down(console=_quiet())
        if base_dir is not None and base_dir != rd and base_dir.parent == services.SYSTEM_BASE:
            shutil.rmtree(base_dir, ignore_errors=True)
    for pid in shared_pids:
        assert _alive(pid)


def test_purge_leaves_data_of_another_run_dir_alone(monkeypatch, tmp_path):
    rd = _isolate(monkeypatch, tmp_path)
    lay = services._layout()
    if lay.base_dir == rd:
        pytest.skip("not root: the data lives in the run dir itself")
    try:
        lay.base_dir.mkdir(parents=True)
        (lay.base_dir / "instance.json").write_text('{"run_dir": "/somewhere/else/.run"}\n')
        with pytest.raises(services.ServiceError, match="belongs to run dir /somewhere/else/.run"):
            services.purge(console=_quiet())
        assert lay.base_dir.exists()
    finally:
        if lay.base_dir.parent == services.SYSTEM_BASE:
            shutil.rmtree(lay.base_dir, ignore_errors=True)


def test_purge_command_asks_first(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from cli.app import app

    rd = _isolate(monkeypatch, tmp_path)
    lay = services._layout()
    runner = CliRunner()
    assert "--yes" in runner.invoke(app, ["services", "purge", "--help"]).output
    try:
        lay.pg_dir.mkdir(parents=True)  # a cluster's place, nothing running on it
        rd.mkdir(parents=True, exist_ok=True)
        (rd / "services.env").write_text("# nothing\n")
        declined = runner.invoke(app, ["services", "purge"], input="n\n")
        assert declined.exit_code != 0
        assert (rd / "services.env").exists() and lay.pg_dir.exists()
        accepted = runner.invoke(app, ["services", "purge", "--yes"])
        assert accepted.exit_code == 0, accepted.output
        assert not (rd / "services.env").exists() and not lay.pg_dir.exists()
        assert lay.base_dir == rd or not lay.base_dir.exists()
    finally:
        if lay.base_dir != rd and lay.base_dir.parent == services.SYSTEM_BASE:
            shutil.rmtree(lay.base_dir, ignore_errors=True)
