#!/bin/sh
# Entrypoint of the `mqtt` service in docker-compose.yml (image eclipse-mosquitto:2,
# busybox sh). Runs as root, like the image's own entrypoint; Mosquitto itself drops to
# `user mosquitto` (docker/mosquitto.conf).
#
#   mosquitto-entrypoint.sh          wait until the `init` service has written passwd and
#                                    acl into the shared volume, install private copies,
#                                    start mosquitto, and send it SIGHUP whenever passwd or
#                                    acl change there (`borderwatch gateway add`,
#                                    `gateway sync-broker`, `seed-demo`, a new `init` run)
#   mosquitto-entrypoint.sh health   healthcheck: exit 0 if mosquitto runs and listens
#
# Why copies: the files in the shared volume belong to the application's user (uid
# 10001, mode 0600), which the unprivileged broker cannot read; the copies in $AUTH_DIR
# belong to mosquitto, mode 0600, and each is replaced atomically. Mosquitto reads
# passwd/acl only at start and on SIGHUP (broker/service.py leaves the reload to us: the
# broker is not one `borderwatch services up` started), hence the polling below.
#
# Environment (all optional):
#   BW_AUTH_SRC        shared volume with passwd and acl   (/broker-auth)
#   BW_AUTH_DIR        private copies, see mosquitto.conf  (/mosquitto/auth)
#   BW_MOSQUITTO_CONF  broker config                       (/mosquitto/config/mosquitto.conf)
#   BW_AUTH_POLL_S     seconds between checks for changes  (3; at least 2)
#   BW_AUTH_WAIT_S     how long to wait for the files      (600)
#   BW_BROKER_USER     owner of the copies                 (mosquitto)
#   BW_BROKER_PORT     listener port for `health`          (1883)
set -u

AUTH_SRC=${BW_AUTH_SRC:-/broker-auth}
AUTH_DIR=${BW_AUTH_DIR:-/mosquitto/auth}
CONF=${BW_MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}
POLL_S=${BW_AUTH_POLL_S:-3}
WAIT_S=${BW_AUTH_WAIT_S:-600}
BROKER_USER=${BW_BROKER_USER:-mosquitto}
PORT=${BW_BROKER_PORT:-1883}
MARKER=$AUTH_DIR/.installed
PID_FILE=$AUTH_DIR/.mosquitto.pid

log() {
    echo "$(date -u '+%Y-%m-%dT%H:%M:%S') bw-mosquitto: $*" >&2
}

health() {
    pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # A listening socket (state 0A) on the port, IPv4 or IPv6, in this container's netns.
    hex=$(printf ':%04X' "$PORT")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null \
        | awk -v p="$hex" 'substr($2, length($2) - 4) == p && $4 == "0A" { up = 1 } END { exit !up }'
}

# Back-date the marker by one second: busybox `find -newer` compares whole seconds, so a
# file replaced in the same second as the marker is still seen as newer next time (at
# worst one extra reload).
stamp() {
    touch -d "@$(($(date +%s) - 1))" "$MARKER"
}

# Copy passwd and acl from the shared volume; each copy replaces the old one atomically.
install_auth() {
    for name in passwd acl; do
        tmp="$AUTH_DIR/.$name.new"
        rm -f "$tmp"
        if ! { cp "$AUTH_SRC/$name" "$tmp" \
            && chown "$BROKER_USER:$BROKER_USER" "$tmp" \
            && chmod 0600 "$tmp" \
            && mv -f "$tmp" "$AUTH_DIR/$name"; }; then
            rm -f "$tmp"
            return 1
        fi
    done
}

case "${1:-run}" in
    health) health; exit $? ;;
    run) ;;
    *) echo "usage: $0 [run|health]" >&2; exit 2 ;;
esac

case "$POLL_S" in '' | *[!0-9]*) POLL_S=3 ;; esac
[ "$POLL_S" -ge 2 ] || POLL_S=2
case "$WAIT_S" in '' | *[!0-9]*) WAIT_S=600 ;; esac
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)

trap 'log "stopped while waiting"; exit 143' TERM INT
waited=0
while [ ! -s "$AUTH_SRC/passwd" ] || [ ! -f "$AUTH_SRC/acl" ]; do
    if [ "$waited" -ge "$WAIT_S" ]; then
        log "error: no $AUTH_SRC/passwd and acl after ${WAIT_S}s; they are written by the init service" \
            "(borderwatch gateway init-broker): see \`docker compose logs init\`"
        exit 1
    fi
    if [ $((waited % 30)) -eq 0 ]; then
        log "waiting for $AUTH_SRC/passwd and $AUTH_SRC/acl (written by the init service)"
    fi
    sleep 1 &
    wait $!
    waited=$((waited + 1))
done

mkdir -p "$AUTH_DIR" || exit 1
chown "$BROKER_USER:$BROKER_USER" "$AUTH_DIR" && chmod 0700 "$AUTH_DIR" || exit 1
# What the image's own entrypoint does: the broker must own its persistence directory.
if [ -d /mosquitto/data ]; then
    chown -R "$BROKER_USER:$BROKER_USER" /mosquitto/data || exit 1
fi
stamp
if ! install_auth; then
    log "error: cannot copy passwd/acl from $AUTH_SRC to $AUTH_DIR"
    exit 1
fi

"$MOSQUITTO" -c "$CONF" &
pid=$!
echo "$pid" >"$PID_FILE"
log "mosquitto started (pid $pid); reloading it when $AUTH_SRC/passwd or acl change (every ${POLL_S}s)"

stopping=0
sleeper=
# SIGTERM/SIGINT (docker stop): pass it on to mosquitto, which saves its persistence.
trap 'stopping=1; [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null; kill -TERM "$pid" 2>/dev/null' TERM INT

while [ "$stopping" -eq 0 ] && kill -0 "$pid" 2>/dev/null; do
    sleep "$POLL_S" &
    sleeper=$!
    wait "$sleeper" # returns at once when a trapped signal arrives
    sleeper=
    [ "$stopping" -eq 0 ] || break
    if [ -n "$(find "$AUTH_SRC/passwd" "$AUTH_SRC/acl" -newer "$MARKER" 2>/dev/null)" ]; then
        sleep 1 # sync_broker replaces passwd, then acl: let it finish the pair
        stamp
        if install_auth; then
            log "passwd/acl changed: reloading mosquitto (SIGHUP)"
            kill -HUP "$pid" 2>/dev/null
        else
            log "warning: cannot copy passwd/acl from $AUTH_SRC; the broker keeps the previous ones"
        fi
    fi
done

# Mosquitto's exit status is the container's (restart: unless-stopped restarts it).
while :; do
    wait "$pid"
    rc=$?
    kill -0 "$pid" 2>/dev/null || break
done
rm -f "$PID_FILE"
log "mosquitto exited with status $rc"
exit "$rc"
