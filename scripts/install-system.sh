#!/usr/bin/env bash
# Install the Debian packages Borderwatch's project-local services need.
#
# Checks for: a PostgreSQL server (initdb/pg_ctl under /usr/lib/postgresql/<major>/bin),
# PostGIS 3 for that major, mosquitto (broker + mosquitto_passwd), mosquitto-clients
# (mosquitto_pub/mosquitto_sub) and python3-venv. Installs exactly what is missing
# when run as root; otherwise prints the sudo command to run and exits 1.
#
# It never starts, stops or reconfigures system services. (On a fresh machine the
# postinst scripts of postgresql-<major> and mosquitto may start Debian's own cluster
# on 5432 and broker on 1883: they are left alone; Borderwatch runs its own.)
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/install-system.sh [--check] [--help]

Checks for the Debian packages Borderwatch needs and installs the missing ones:
  postgresql-<major>            PostgreSQL server (initdb, pg_ctl in /usr/lib/postgresql/<major>/bin)
  postgresql-<major>-postgis-3  PostGIS 3 for that major (extension/postgis.control)
  mosquitto                     MQTT broker and mosquitto_passwd
  mosquitto-clients             mosquitto_pub, mosquitto_sub
  python3-venv                  `python3 -m venv` works

As root:     apt-get update, then apt-get install -y --no-install-recommends <missing packages>.
Not root:    prints the `sudo apt-get install ...` command to run and exits 1.

Options:
  --check       only report; exit 1 if something is missing, install nothing
  --test-tools  also the tools the test suite uses: docker-compose (validates docker-compose.yml),
                chromium (the browser the map tests drive headless through Playwright),
                gdal-bin (ogrinfo/ogr2ogr open the OGC API Features endpoint)
  -h, --help show this help

Exit status: 0 when everything is present (or was installed), 1 otherwise.
System services are never started, stopped or reconfigured by this script.
EOF
}

CHECK_ONLY=0
TEST_TOOLS=0
for arg in "$@"; do
    case "$arg" in
        -h|--help) usage; exit 0 ;;
        --check) CHECK_ONLY=1 ;;
        --test-tools) TEST_TOOLS=1 ;;
        *) echo "install-system.sh: unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done

ok()   { printf '  [ok]      %s\n' "$*"; }
miss() { printf '  [missing] %s\n' "$*"; }

# Highest PostgreSQL major that has a server (initdb + pg_ctl) installed, or empty.
pg_installed_major() {
    local best="" d v
    for d in /usr/lib/postgresql/*/bin; do
        if [ ! -x "$d/initdb" ] || [ ! -x "$d/pg_ctl" ]; then continue; fi
        v="$(basename "$(dirname "$d")")"
        [[ "$v" =~ ^[0-9]+$ ]] || continue
        if [ -z "$best" ] || [ "$v" -gt "$best" ]; then best="$v"; fi
    done
    printf '%s' "$best"
}

# The major Debian's `postgresql` metapackage points at (needs apt lists), or empty.
pg_candidate_major() {
    apt-cache depends postgresql 2>/dev/null \
        | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n1
}

# Fallback when apt knows nothing yet: the release's default major.
pg_release_default_major() {
    local ver=""
    if [ -r /etc/os-release ]; then
        # shellcheck disable=SC1091
        ver="$(. /etc/os-release && printf '%s' "${VERSION_ID:-}")"
    fi
    case "$ver" in
        11) echo 13 ;;
        12) echo 15 ;;
        13) echo 17 ;;
        *) echo 15 ;;
    esac
}

have_cmd() {
    # /usr/sbin is not on every user's PATH, but mosquitto lives there. (`command -v`
    # alone also reports a non-executable file when no executable one exists.)
    local p
    p="$(command -v "$1" 2>/dev/null || true)"
    if [ -n "$p" ] && [ -f "$p" ] && [ -x "$p" ]; then return 0; fi
    local d
    for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin; do
        if [ -f "$d/$1" ] && [ -x "$d/$1" ]; then return 0; fi
    done
    return 1
}

APT_UPDATED=0
apt_update_once() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        echo "Running apt-get update ..."
        apt-get update
        APT_UPDATED=1
    fi
}

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

echo "Borderwatch system packages:"
MISSING=()

PG_MAJOR="$(pg_installed_major)"
if [ -n "$PG_MAJOR" ]; then
    ok "PostgreSQL $PG_MAJOR server (/usr/lib/postgresql/$PG_MAJOR/bin/initdb, pg_ctl)"
else
    PG_MAJOR="$(pg_candidate_major)"
    if [ -z "$PG_MAJOR" ] && [ "$IS_ROOT" -eq 1 ] && [ "$CHECK_ONLY" -eq 0 ]; then
        apt_update_once
        PG_MAJOR="$(pg_candidate_major)"
    fi
    [ -n "$PG_MAJOR" ] || PG_MAJOR="$(pg_release_default_major)"
    miss "PostgreSQL server: no /usr/lib/postgresql/*/bin/initdb (will use postgresql-$PG_MAJOR)"
    MISSING+=("postgresql-$PG_MAJOR")
fi

POSTGIS_CONTROL="/usr/share/postgresql/$PG_MAJOR/extension/postgis.control"
if [ -f "$POSTGIS_CONTROL" ]; then
    ok "PostGIS for PostgreSQL $PG_MAJOR ($POSTGIS_CONTROL, $(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$POSTGIS_CONTROL"))"
else
    miss "PostGIS 3 for PostgreSQL $PG_MAJOR ($POSTGIS_CONTROL)"
    MISSING+=("postgresql-$PG_MAJOR-postgis-3")
fi

if have_cmd mosquitto && have_cmd mosquitto_passwd; then
    MOSQ_BIN="$(command -v mosquitto 2>/dev/null || echo /usr/sbin/mosquitto)"
    ok "mosquitto $("$MOSQ_BIN" -h 2>/dev/null | sed -n '1s/^mosquitto version //p' || true) ($MOSQ_BIN)"
else
    miss "mosquitto (broker and mosquitto_passwd)"
    MISSING+=("mosquitto")
fi

if have_cmd mosquitto_pub && have_cmd mosquitto_sub; then
    ok "mosquitto-clients (mosquitto_pub, mosquitto_sub)"
else
    miss "mosquitto-clients (mosquitto_pub, mosquitto_sub)"
    MISSING+=("mosquitto-clients")
fi

# Debian's python3-venv is about Debian's /usr/bin/python3 (a pyenv or /usr/local
# python3 earlier on PATH says nothing about it).
SYS_PY=/usr/bin/python3
venv_works() {
    local tmp rc=0
    [ -x "$SYS_PY" ] || return 1
    tmp="$(mktemp -d)"
    "$SYS_PY" -m venv "$tmp/venv" >/dev/null 2>&1 || rc=1
    rm -rf "$tmp"
    return "$rc"
}
if venv_works; then
    ok "python3-venv ($SYS_PY -m venv works, $("$SYS_PY" --version 2>&1))"
else
    miss "python3-venv ($SYS_PY -m venv fails)"
    MISSING+=("python3-venv")
fi

if [ "$TEST_TOOLS" -eq 1 ]; then
    if have_cmd docker-compose; then
        ok "docker-compose (compose file validation)"
    else
        miss "docker-compose (compose file validation)"
        MISSING+=("docker-compose")
    fi
    if [ -x /usr/bin/chromium ]; then
        ok "chromium ($(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium))"
    else
        miss "chromium (headless browser for the map tests)"
        MISSING+=("chromium")
    fi
    if have_cmd ogrinfo; then
        ok "gdal-bin (ogrinfo/ogr2ogr read the OGC API Features endpoint)"
    else
        miss "gdal-bin (ogrinfo/ogr2ogr read the OGC API Features endpoint)"
        MISSING+=("gdal-bin")
    fi
fi

if [ "${#MISSING[@]}" -eq 0 ]; then
    echo "All system packages are present."
    exit 0
fi

echo "Missing packages: ${MISSING[*]}"
if [ "$CHECK_ONLY" -eq 1 ]; then
    exit 1
fi
if [ "$IS_ROOT" -ne 1 ]; then
    echo "Not running as root. Install them with:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${MISSING[*]}" >&2
    exit 1
fi

apt_update_once
echo "Installing: ${MISSING[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${MISSING[@]}"

# Re-check what we just installed.
FAILED=0
NEW_MAJOR="$(pg_installed_major)"
if [ -z "$NEW_MAJOR" ]; then
    echo "error: still no PostgreSQL server under /usr/lib/postgresql/*/bin after install" >&2; FAILED=1
elif [ ! -f "/usr/share/postgresql/$NEW_MAJOR/extension/postgis.control" ]; then
    echo "error: PostGIS for PostgreSQL $NEW_MAJOR still missing (install postgresql-$NEW_MAJOR-postgis-3)" >&2; FAILED=1
fi
have_cmd mosquitto || { echo "error: mosquitto still missing" >&2; FAILED=1; }
for c in mosquitto_passwd mosquitto_pub mosquitto_sub; do have_cmd "$c" || { echo "error: $c still missing" >&2; FAILED=1; }; done
venv_works || { echo "error: $SYS_PY -m venv still fails" >&2; FAILED=1; }
if [ "$FAILED" -ne 0 ]; then
    exit 1
fi
echo "Installed: ${MISSING[*]}"
