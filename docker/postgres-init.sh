#!/bin/sh
# First start of the `db` service only (an empty `db-data` volume): the postgres image
# runs /docker-entrypoint-initdb.d/*.sh after its own set-up (postgis/postgis: after
# 10_postgis.sh). It may source this file instead of running it, so: no `exit`, no `set`.
#
# What cli/local/postgres.py (_pg_up) does for the project-local cluster:
#   * the owner role `borderwatch`: LOGIN, NOSUPERUSER, password BW_DB_PASSWORD
#     (SCRAM: the image's default password_encryption and pg_hba method);
#   * the runtime roles `borderwatch_api` (BW_DB_API_PASSWORD) and `borderwatch_ingest`
#     (BW_DB_INGEST_PASSWORD), which own nothing: `borderwatch migrate` grants their rights;
#   * the database `borderwatch`, owned by that role;
#   * PostGIS in it, created by the superuser.
# Then the superuser `postgres` loses its password (it got BW_DB_PASSWORD through
# POSTGRES_PASSWORD only because the image insists on one): like the local cluster's
# superuser it can log in through the container's unix socket only
# (`docker compose exec db psql -U postgres`), never over the network.
#
# Changing BW_DB_PASSWORD later does not change the role's password: run
#   docker compose exec db psql -U postgres -c "ALTER ROLE borderwatch PASSWORD '...'"
# then restart the other services with the new variable. A volume made before the runtime
# roles existed: create them the same way (CREATE ROLE borderwatch_api LOGIN PASSWORD '...';
# likewise borderwatch_ingest), then `docker compose up -d` (init's migrate grants their rights).
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set=app_password="$BW_DB_PASSWORD" --set=api_password="$BW_DB_API_PASSWORD" \
    --set=ingest_password="$BW_DB_INGEST_PASSWORD" <<'SQL'
CREATE ROLE borderwatch LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
CREATE ROLE borderwatch_api LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'api_password';
CREATE ROLE borderwatch_ingest LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'ingest_password';
CREATE DATABASE borderwatch OWNER borderwatch;
\connect borderwatch
CREATE EXTENSION IF NOT EXISTS postgis;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
\connect postgres
ALTER ROLE CURRENT_USER PASSWORD NULL;
SQL
