#!/bin/sh
# Entry point of the postgres:15 stand-in (test/compose/images/postgres):
# on an empty $PGDATA, initdb with POSTGRES_USER (default postgres) and
# POSTGRES_PASSWORD (required), password (scram-sha-256) authentication for
# network clients, listen on every address, create POSTGRES_DB; then run
# the command as the postgres user.
set -eu
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ "${1:-}" = postgres ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
      echo "postgres: POSTGRES_PASSWORD is not set (the official image refuses to start without it)" >&2
      exit 1
    fi
    pw=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"
    chown postgres "$pw"
    as_postgres initdb -D "$PGDATA" -U "$user" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pw"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
      echo "CREATE DATABASE \"$db\"" | as_postgres postgres --single -D "$PGDATA" -j postgres >/dev/null
    fi
    echo "postgres: database initialised in $PGDATA"
  fi
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
fi
exec "$@"
