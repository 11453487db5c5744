#!/bin/sh
# First start of the `db` service only (an empty `db-data` volume): the postgres image
# runs /docker-entrypoint-initdb.d/*.sh after its own set-up (postgis/postgis: after
# 10_postgis.sh). It may source this file instead of running it, so: no `exit`, no `set`.
#
# What cli/local/postgres.py (_pg_up) does for the project-local cluster:
#   * the application role `borderwatch`: LOGIN, NOSUPERUSER, password BW_DB_PASSWORD
#     (SCRAM: the image's default password_encryption and pg_hba method);
#   * the database `borderwatch`, owned by that role;
#   * PostGIS in it, created by the superuser.
# Then the superuser `postgres` loses its password (it got BW_DB_PASSWORD through
# POSTGRES_PASSWORD only because the image insists on one): like the local cluster's
# superuser it can log in through the container's unix socket only
# (`docker compose exec db psql -U postgres`), never over the network.
#
# Changing BW_DB_PASSWORD later does not change the role's password: run
#   docker compose exec db psql -U postgres -c "ALTER ROLE borderwatch PASSWORD '...'"
# then restart the other services with the new variable.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set=app_password="$BW_DB_PASSWORD" <<'SQL'
CREATE ROLE borderwatch LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
CREATE DATABASE borderwatch OWNER borderwatch;
\connect borderwatch
CREATE EXTENSION IF NOT EXISTS postgis;
\connect postgres
ALTER ROLE CURRENT_USER PASSWORD NULL;
SQL
