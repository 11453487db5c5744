# Borderwatch application image: the `borderwatch` command (API, ingest worker, init jobs).
# Used by docker-compose.yml for the `init`, `api` and `ingest` services.
#
#   docker build -t borderwatch:local .
#   docker run --rm borderwatch:local --help
#
# The image holds no secret and no configuration: everything comes from BW_* variables
# (core/settings.py), see the top of docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that code changes do not reinstall
# them. All of them (geopandas, pyogrio, shapely, pyproj, psycopg[binary], ...) come as
# manylinux wheels for CPython 3.11 on amd64 and arm64: no compiler in this image.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --prefer-binary -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself. Installed in editable mode on purpose: the code finds alembic.ini,
# migrations/script.py.mako and geo/data/agencies.json next to its packages (REPO_ROOT in
# core/settings.py), and a regular wheel of this pyproject.toml does not ship those files.
COPY . .
RUN pip install --no-deps -e . \
    && python -m compileall -q cli core accounts alerts broker geo sensors patrols sharing watchlists audit features interop api maps migrations \
    && borderwatch --help >/dev/null

# Non-root user (fixed uid/gid: named volumes keep the ownership they get here).
# /var/lib/borderwatch/broker is where the `init` service writes the broker's passwd/acl
# (the `broker-auth` volume); /var/lib/borderwatch/run is BW_RUN_DIR (seed-demo's
# credential files). The code under /app stays read-only for that user.
RUN groupadd --system --gid 10001 borderwatch \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/borderwatch \
        --no-create-home --shell /usr/sbin/nologin borderwatch \
    && mkdir -p /var/lib/borderwatch/broker /var/lib/borderwatch/run /var/lib/borderwatch/audit \
    && chown -R 10001:10001 /var/lib/borderwatch \
    && chmod 0750 /var/lib/borderwatch/broker /var/lib/borderwatch/run \
    && chmod 0700 /var/lib/borderwatch/audit

ENV HOME=/var/lib/borderwatch \
    BW_RUN_DIR=/var/lib/borderwatch/run \
    BW_API_PORT=8000

USER 10001:10001

EXPOSE 8000

# For the API (the default command). docker-compose.yml disables it for `init` and `ingest`,
# which serve no HTTP. urlopen raises on a refused connection and on the 503 that /health
# answers when the database is unreachable.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('BW_API_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["borderwatch"]
CMD ["api", "--host", "0.0.0.0"]
