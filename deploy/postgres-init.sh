#!/usr/bin/env bash
# The warehouse database beside Airflow's metadata database. The postgres image runs this once, on
# the first start with an empty data volume (docker-compose.yaml mounts it into
# /docker-entrypoint-initdb.d/); later changes to WAREHOUSE_PASSWORD do not reach an existing volume.
# The image may source this file rather than run it, so it sets no shell options of its own.
if [[ -z "${WAREHOUSE_PASSWORD:-}" ]]; then
    echo "ERROR: WAREHOUSE_PASSWORD is empty: copy .env.example to .env and fill it in" >&2
    exit 1
fi
# psql fills :'warehouse_password' in as a quoted literal, so the password is never spliced into SQL text.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=warehouse_password="$WAREHOUSE_PASSWORD" <<'EOSQL'
CREATE USER socialsync WITH PASSWORD :'warehouse_password';
CREATE DATABASE warehouse OWNER socialsync;
EOSQL
