"""The container deployment: docker-compose.yml, Dockerfile, .dockerignore and docker/.

No Docker engine and no services are needed: `docker compose config` (Compose v2) and
`docker-compose config` (v1.29) only parse and interpolate the file. They run with every
implementation that is installed; the compose tests are skipped only when neither is.
The mosquitto config in docker/ is compared with the one cli/local.py writes for the
local broker, and names shared with the code (database role, MQTT users, CLI commands) are
checked against it, so the two set-ups cannot drift apart silently.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

try:
    import yaml
except ImportError:  # PyYAML comes with uvicorn[standard]; without it fewer checks run
    yaml = None

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DOCKER_DIR = ROOT / "docker"
MOSQUITTO_CONF = DOCKER_DIR / "mosquitto.conf"
MQTT_ENTRYPOINT = DOCKER_DIR / "mosquitto-entrypoint.sh"
PG_INIT = DOCKER_DIR / "postgres-init.sh"
ENV_EXAMPLE = DOCKER_DIR / ".env.example"

SERVICES = {"db", "mqtt", "init", "api", "ingest", "checkpoints"}
PUBLISHING = {"db", "mqtt", "api"}
# Dummy values for the required variables: distinctive, so that the rendered config shows
# exactly where each one ends up.
REQUIRED = {
    "BW_DB_PASSWORD": "dummy-db-pw-Qx7vN2",
    "BW_DB_API_PASSWORD": "dummy-db-api-pw-Wd4cF6",
    "BW_DB_INGEST_PASSWORD": "dummy-db-ingest-pw-Jn8gT3",
    "BW_MQTT_INGEST_PASSWORD": "dummy-ingest-pw-Kp3wL8",
    "BW_MQTT_API_PASSWORD": "dummy-api-pw-Zr9tM4",
    "BW_JWT_SECRET": "dummy-jwt-secret-Hy5sB1-0123456789abcdefghij",
}
# Environment variable names that hold secrets (upper case, as everywhere in this project).
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^:/@\s]+:([^@\s]*)@", re.I)


# --------------------------------------------------------------------------- compose runners


def _implementations() -> list[tuple[str, list[str]]]:
    found = []
    if shutil.which("docker"):
        try:
            cp = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            cp = None
        if cp is not None and cp.returncode == 0:
            found.append(("compose-v2", ["docker", "compose"]))
    if shutil.which("docker-compose"):
        found.append(("docker-compose-v1", ["docker-compose"]))
    return found


IMPLEMENTATIONS = _implementations()
compose_impls = pytest.mark.parametrize(
    "compose",
    [pytest.param(cmd, id=name) for name, cmd in IMPLEMENTATIONS]
    or [
        pytest.param(
            None,
            id="none",
            marks=pytest.mark.skip(
                reason="neither `docker compose` (v2 plugin) nor `docker-compose` is installed "
                "(Debian: apt-get install docker-compose)"
            ),
        )
    ],
)


def _run_config(
    compose: list[str], env_vars: dict[str, str], *args: str, tmp_path: Path
) -> subprocess.CompletedProcess:
    """`<compose> config ...` with only ``env_vars`` set: nothing from this process's
    environment (conftest sets BW_* variables) and no stray .env file gets in."""
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8", **env_vars}
    # Where the docker CLI finds the v2 plugin (besides the system plugin directories).
    docker_config = os.environ.get("DOCKER_CONFIG") or str(Path(os.environ.get("HOME", "/root")) / ".docker")
    if Path(docker_config).is_dir():
        env["DOCKER_CONFIG"] = docker_config
    return subprocess.run(
        [*compose, "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), "config", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def _render(compose: list[str], tmp_path: Path) -> dict:
    if compose[0] == "docker":
        cp = _run_config(compose, REQUIRED, "--format", "json", tmp_path=tmp_path)
        assert cp.returncode == 0, cp.stderr
        return json.loads(cp.stdout)
    cp = _run_config(compose, REQUIRED, tmp_path=tmp_path)
    assert cp.returncode == 0, cp.stderr
    if yaml is None:
        pytest.skip("PyYAML is not installed: cannot parse docker-compose 1.x output")
    return yaml.safe_load(cp.stdout)


def _ports(service: dict) -> list[tuple[str | None, str, str]]:
    """(host ip, published, target) of each port, from v1 strings or v2 long syntax."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            out.append((port.get("host_ip") or None, str(port.get("published", "")), str(port["target"])))
            continue
        spec = str(port).split("/")[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 3:
            out.append((parts[0].strip("[]"), parts[1], parts[2]))
        elif len(parts) == 2:
            out.append((None, parts[0], parts[1]))
        else:
            out.append((None, "", parts[0]))
    return out


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _mounts(service: dict) -> dict[str, str]:
    """target -> source of the service's volumes (v1 short strings or v2 long syntax)."""
    out = {}
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            out[vol["target"]] = str(vol.get("source", ""))
        else:
            source, target = str(vol).split(":")[:2]
            out[target] = source
    return out


# --------------------------------------------------------------------------- compose tests


@compose_impls
def test_config_is_valid_with_the_required_variables(compose, tmp_path):
    cp = _run_config(compose, REQUIRED, "-q", tmp_path=tmp_path)
    assert cp.returncode == 0, f"{' '.join(compose)} config -q failed:\n{cp.stderr}{cp.stdout}"


@compose_impls
@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_config_refuses_to_run_without_a_required_variable(compose, missing, tmp_path):
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    cp = _run_config(compose, env, "-q", tmp_path=tmp_path)
    assert cp.returncode != 0, f"config passed without {missing}"
    assert f"set {missing}" in cp.stderr + cp.stdout, cp.stderr
    # An empty value (e.g. the unedited docker/.env.example) counts as missing too.
    cp = _run_config(compose, {**env, missing: ""}, "-q", tmp_path=tmp_path)
    assert cp.returncode != 0, f"config passed with an empty {missing}"


@compose_impls
def test_rendered_services_and_published_ports(compose, tmp_path):
    config = _render(compose, tmp_path)
    services = config["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        ports = _ports(service)
        if name in PUBLISHING:
            assert ports, f"{name} publishes no port"
            for host_ip, published, target in ports:
                assert host_ip == "127.0.0.1", (
                    f"{name} publishes {published}->{target} on {host_ip or 'all interfaces'}"
                )
        else:
            assert not ports, f"{name} should publish nothing, has {ports}"
    assert {t for _, _, t in _ports(services["api"])} == {"8000"}
    assert {t for _, _, t in _ports(services["mqtt"])} == {"1883"}
    assert {t for _, _, t in _ports(services["db"])} == {"5432"}


@compose_impls
def test_secrets_only_come_from_the_required_variables(compose, tmp_path):
    config = _render(compose, tmp_path)
    dummies = set(REQUIRED.values())
    for name, service in config["services"].items():
        for key, value in _environment(service).items():
            if SECRET_NAME.search(key):
                assert value in dummies, f"{name}: {key} is a literal, not one of the required variables"
            match = URL_PASSWORD.match(value)
            if match:
                assert match.group(1) in dummies, f"{name}: {key} holds a literal password"
    # And where each secret goes (least privilege: the JWT secret only to the API).
    env = {name: _environment(s) for name, s in config["services"].items()}
    where = {d: sorted(n for n, e in env.items() if any(d in v for v in e.values())) for d in dummies}
    assert where[REQUIRED["BW_JWT_SECRET"]] == ["api"]
    # The owner's password only to the database and to init (migrations); each runtime role's to its service.
    assert where[REQUIRED["BW_DB_PASSWORD"]] == ["db", "init"]
    assert where[REQUIRED["BW_DB_API_PASSWORD"]] == ["api", "checkpoints", "db", "init"]
    assert where[REQUIRED["BW_DB_INGEST_PASSWORD"]] == ["db", "ingest"]
    assert where[REQUIRED["BW_MQTT_INGEST_PASSWORD"]] == ["ingest", "init"]
    assert where[REQUIRED["BW_MQTT_API_PASSWORD"]] == ["api", "init"]


def test_compose_file_has_no_literal_secrets():
    """Raw file: every secret-looking value is a required-variable reference."""
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"^version\s*:", text, re.M), "compose specification format: no top-level version"
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        # ${BW_X:?message} -> REQUIRED_VAR, any other ${...} -> OTHER_VAR (messages have spaces).
        code = re.sub(r"\$\{BW_[A-Z0-9_]+:\?[^}]+\}", "REQUIRED_VAR", line.split(" #", 1)[0])
        code = re.sub(r"\$\{[^}]*\}", "OTHER_VAR", code)
        # `KEY: value` (any case: a YAML key) or `- KEY=value` (an environment list item).
        m = re.match(r"\s*-?\s*([A-Za-z0-9_]+)\s*([:=])\s*(.+?)\s*$", code)
        if m and (
            SECRET_NAME.search(m.group(1))
            or (m.group(2) == ":" and re.search("password|secret|token", m.group(1), re.I))
        ):
            assert m.group(3).strip("'\"") == "REQUIRED_VAR", (
                f"docker-compose.yml:{lineno}: {m.group(1)} must be a required variable ${{BW_...:?message}}"
            )
        for url in re.findall(r"[a-z][a-z0-9+.-]*://[^\s'\"]+", code):
            pw = URL_PASSWORD.match(url)
            if pw:
                assert pw.group(1) == "REQUIRED_VAR", f"docker-compose.yml:{lineno}: literal password in {line.strip()}"
    if ENV_EXAMPLE.exists():
        for line in ENV_EXAMPLE.read_text().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                if SECRET_NAME.search(key):
                    assert value == "" or value.startswith("change-me"), f"{ENV_EXAMPLE.name}: {key} has a value"


@pytest.mark.skipif(yaml is None, reason="PyYAML is not installed")
def test_compose_matches_the_code():
    """Names and paths the compose file shares with the code and the other files."""
    from cli import local

    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    svc = raw["services"]
    env = {name: _environment(s) for name, s in svc.items()}

    owner_url = env["init"]["BW_OWNER_DATABASE_URL"]
    assert owner_url.startswith(f"postgresql+psycopg://{local.DB_ROLE}:")
    db_url = env["init"]["BW_DATABASE_URL"]
    assert db_url.startswith(f"postgresql+psycopg://{local.DB_API_ROLE}:")
    assert db_url.endswith(f"@db:5432/{local.DATABASES[0]}") and owner_url.endswith(f"@db:5432/{local.DATABASES[0]}")
    assert env["ingest"]["BW_DATABASE_URL"].startswith(f"postgresql+psycopg://{local.DB_INGEST_ROLE}:")
    for role in (local.DB_API_ROLE, local.DB_INGEST_ROLE):
        assert f"CREATE ROLE {role} LOGIN" in PG_INIT.read_text()
    assert env["init"]["BW_MQTT_URL"].startswith(f"mqtt://{local.MQTT_INGEST_USER}:")
    assert env["init"]["BW_MQTT_API_URL"].startswith(f"mqtt://{local.MQTT_API_USER}:")
    assert env["ingest"]["BW_MQTT_URL"] == env["init"]["BW_MQTT_URL"]
    assert env["api"]["BW_DATABASE_URL"] == env["checkpoints"]["BW_DATABASE_URL"] == db_url
    assert env["api"]["BW_JWT_SECRET"].startswith("${BW_JWT_SECRET:?")

    assert svc["db"]["image"] == "postgis/postgis:15-3.4"
    assert svc["mqtt"]["image"] == "eclipse-mosquitto:2"
    for name in ("init", "api", "ingest"):
        assert "build" in svc[name] and svc[name]["image"] == svc["init"]["image"], name
    assert svc["ingest"]["restart"] == "unless-stopped"
    assert svc["ingest"]["stop_signal"] == "SIGTERM"
    assert "deploy" not in svc["ingest"]
    assert "BW_INGEST_CLIENT_ID" in COMPOSE_FILE.read_text().split("ingest-2:", 1)[1], "second-worker example"

    # init: migrate, load the borders, write the broker files into the shared volume.
    init_cmd = " ".join(svc["init"]["entrypoint"] + svc["init"]["command"])
    assert re.search(r"borderwatch migrate && borderwatch load-borders && borderwatch gateway init-broker", init_cmd)
    assert svc["init"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("api", "ingest"):
        assert svc[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert "mqtt" in svc[name]["depends_on"]
    broker_dir = env["init"]["BW_MOSQUITTO_DIR"]
    assert _mounts(svc["init"])[broker_dir] == "broker-auth"
    assert broker_dir in DOCKERFILE.read_text(), "the image must create (and chown) BW_MOSQUITTO_DIR"
    # mqtt: the same volume where the entrypoint looks for it; config where the image reads it.
    entry = MQTT_ENTRYPOINT.read_text()
    src = re.search(r"AUTH_SRC=\$\{BW_AUTH_SRC:-([^}]+)\}", entry).group(1)
    auth_dir = re.search(r"AUTH_DIR=\$\{BW_AUTH_DIR:-([^}]+)\}", entry).group(1)
    mqtt_mounts = _mounts(svc["mqtt"])
    assert mqtt_mounts[src].startswith("broker-auth")
    assert mqtt_mounts["/mosquitto/config/mosquitto.conf"] == "./docker/mosquitto.conf"
    assert mqtt_mounts["/mosquitto/data"] == "mqtt-data"
    conf = _parse_mosquitto(MOSQUITTO_CONF.read_text())
    assert conf["password_file"] == [f"{auth_dir}/passwd"]
    assert conf["acl_file"] == [f"{auth_dir}/acl"]
    assert conf["persistence_location"] == ["/mosquitto/data/"]
    script = svc["mqtt"]["entrypoint"][-1]
    assert mqtt_mounts[script] == "./docker/mosquitto-entrypoint.sh"
    assert script in svc["mqtt"]["healthcheck"]["test"]


def test_cli_commands_used_by_the_containers_exist():
    import typer.main

    from cli.app import app

    root = typer.main.get_command(app)
    for name in ("migrate", "load-borders", "api", "ingest", "seed-demo", "simulate"):
        assert name in root.commands, name
    gateway = root.commands["gateway"]
    for name in ("init-broker", "sync-broker", "add"):
        assert name in gateway.commands, name
    assert "--host" in {opt for p in root.commands["api"].params for opt in p.opts}


# --------------------------------------------------------------------------- mosquitto config


def _parse_mosquitto(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key, []).append(value.strip())
    return out


def test_docker_mosquitto_conf_has_the_local_brokers_options(tmp_path):
    """docker/mosquitto.conf == what cli/local.py writes (root mode), except the paths
    and the listener address, which must differ in the container."""
    from cli import local

    base = tmp_path / "instance"
    layout = local._Layout(run_dir=tmp_path, root_mode=True, base_dir=base, pg_socket_dir=base / "socket")
    ours = _parse_mosquitto(local._mosquitto_conf(layout, 51883))
    docker = _parse_mosquitto(MOSQUITTO_CONF.read_text())

    # Options that legitimately differ, and how each must look in the container.
    assert ours.pop("listener") == ["51883 127.0.0.1"]
    assert docker.pop("listener") == ["1883"], "one listener on all interfaces of the container"
    assert docker.pop("log_dest") == ["stderr"], "logs to docker (stdout is block-buffered)"
    assert ours.pop("log_dest")[0].startswith("file ")
    for key, name in (("password_file", "passwd"), ("acl_file", "acl")):
        assert Path(ours.pop(key)[0]).name == name
        assert Path(docker.pop(key)[0]).name == name
    assert ours.pop("persistence_location")[0].endswith("/")
    assert docker.pop("persistence_location")[0].endswith("/")
    ours.pop("pid_file")  # the container's entrypoint keeps the pid itself

    # Everything else: same options, same values (user, allow_anonymous, persistence,
    # persistent_client_expiration, max_inflight_messages, max_queued_messages, ...).
    assert docker == ours
    for key, value in {
        "allow_anonymous": "false",
        "max_inflight_messages": "0",
        "max_queued_messages": "1000000",
        "max_packet_size": str(local.MQTT_MAX_PACKET_SIZE),
        "persistent_client_expiration": "7d",
        "persistence": "true",
    }.items():
        assert docker[key] == [value], key


# --------------------------------------------------------------------------- image and scripts


def test_dockerfile():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "must run as a non-root user"
    assert re.search(r"^ENTRYPOINT \[\"borderwatch\"\]\s*$", text, re.M)
    assert re.search(r'^CMD \["api", "--host", "0\.0\.0\.0"\]\s*$', text, re.M)
    healthcheck = re.search(r"^HEALTHCHECK .*?(?<!\\)\n", text, re.M | re.S).group(0)
    assert "python" in healthcheck and "/health" in healthcheck and "curl" not in healthcheck
    assert re.search(r"pip install [^\n]*\.\s*(\\|$|&&)", text, re.M), "installs the project itself"
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    for entry in (".git", ".venv", ".run", "tests", "**/node_modules", "**/__pycache__"):
        assert entry in ignored, entry
    for needed in ("pyproject.toml", "README.md", "alembic.ini", "core", "geo", "migrations"):
        assert needed not in ignored, needed


@pytest.mark.parametrize("script", [MQTT_ENTRYPOINT, PG_INIT], ids=lambda p: p.name)
def test_shell_scripts_parse(script):
    cp = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    if shutil.which("shellcheck"):
        cp = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, cp.stdout + cp.stderr


def test_the_compose_brokers_service_users_get_the_local_brokers_acl(tmp_path):
    """`gateway init-broker` (compose) writes the service users the same ACL as `services up`:
    each only the topics its service uses, under the topic root the services run with."""
    from broker import service as access
    from cli import local
    from core.settings import Settings

    env = {name: _environment(s) for name, s in yaml.safe_load(COMPOSE_FILE.read_text())["services"].items()}
    roots = {e.get("BW_MQTT_TOPIC_ROOT") for name, e in env.items() if name in ("init", "api", "ingest")}
    assert roots == {None}, "init writes the ACL for the topic root the api and ingest use"
    settings = Settings(
        mqtt_url=f"mqtt://{local.MQTT_INGEST_USER}:one@mqtt:1883",
        mqtt_api_url=f"mqtt://{local.MQTT_API_USER}:two@mqtt:1883",
    )
    access.write_service_entries(settings=settings, directory=tmp_path)

    def rules(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]

    written = rules((tmp_path / "service.acl").read_text())
    assert written == rules(local._service_acl())
    assert not any(line.startswith("topic") and "/gw/" in line and ("write" in line) for line in written)
