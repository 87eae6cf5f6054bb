#!/usr/bin/env bash
# The loopback lab without Docker: PostgreSQL + HSS + I-CSCF + S-CSCF + P-CSCF
# on 127.0.0.1 with the ports of docs/architecture (DESIGN.md).
#   scripts/lab.sh up     build, migrate, start everything, wait until ready
#   scripts/lab.sh down   stop exactly the processes "up" started
#   scripts/lab.sh status show what runs
# Logs and PID files live in .lab/. Running "up" twice is harmless.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=.lab
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ims?sslmode=disable}"
export IMS_DOMAIN="${IMS_DOMAIN:-ims.mnc001.mcc001.3gppnetwork.org}"
FUNCTIONS=(hss scscf icscf pcscf)
# The HSS's provisioning REST API and web console, with a lab token made
# once and kept in .lab/api-token (HSS_API_ADMIN_TOKEN overrides it).
API_LISTEN="${HSS_API_LISTEN:-127.0.0.1:9869}"
declare -A ADMIN=([hss]=9868 [icscf]=9070 [scscf]=9080 [pcscf]=9060)

running() { [ -f "$LAB/$1.pid" ] && kill -0 "$(cat "$LAB/$1.pid")" 2>/dev/null; }

ensure_db() {
  local admin_url
  # Same server, maintenance database: swap the path of DATABASE_URL.
  admin_url=$(printf '%s' "$DATABASE_URL" | sed -E 's#(postgres(ql)?://[^/]*)/[^?]*#\1/postgres#')
  local db
  db=$(printf '%s' "$DATABASE_URL" | sed -E 's#postgres(ql)?://[^/]*/([^?]*).*#\2#')
  if ! psql "$admin_url" -Atc 'select 1' >/dev/null 2>&1; then
    ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1 || true)
    if [ -n "$ver" ] && command -v pg_ctlcluster >/dev/null; then
      echo "lab: starting PostgreSQL $ver"
      pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
      for _ in $(seq 1 20); do psql "$admin_url" -Atc 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
    fi
  fi
  psql "$admin_url" -Atc 'select 1' >/dev/null 2>&1 || {
    echo "lab: PostgreSQL is not reachable at $admin_url (set DATABASE_URL)"; exit 1; }
  if [ "$(psql "$admin_url" -Atc "select 1 from pg_database where datname='$db'")" != 1 ]; then
    echo "lab: creating database $db"
    psql "$admin_url" -qc "create database \"$db\""
  fi
}

wait_ready() {
  local fn=$1 port=${ADMIN[$1]}
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
    running "$fn" || { echo "lab: $fn exited; last log lines:"; tail -n 20 "$LAB/$fn.log"; return 1; }
    sleep 0.2
  done
  echo "lab: $fn not ready after 20 s: $(curl -sS "http://127.0.0.1:$port/readyz" 2>&1)"; return 1
}

api_token() {
  if [ -n "${HSS_API_ADMIN_TOKEN:-}" ]; then printf '%s' "$HSS_API_ADMIN_TOKEN"; return; fi
  if [ ! -s "$LAB/api-token" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$LAB/api-token")
  fi
  cat "$LAB/api-token"
}

# The secret sealing temporary GRUUs (RFC 5627), shared by the S-CSCF and
# the I-CSCF, made once and kept in .lab/gruu-secret (GRUU_SECRET
# overrides it): temporary GRUUs stay valid across lab restarts.
gruu_secret() {
  if [ -n "${GRUU_SECRET:-}" ]; then printf '%s' "$GRUU_SECRET"; return; fi
  if [ ! -s "$LAB/gruu-secret" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$LAB/gruu-secret")
  fi
  cat "$LAB/gruu-secret"
}

up() {
  mkdir -p "$LAB"
  TOKEN=$(api_token)
  GRUU=$(gruu_secret)
  make -s build
  ensure_db
  bin/imsctl db migrate
  for fn in "${FUNCTIONS[@]}"; do
    if running "$fn"; then echo "lab: $fn already running (pid $(cat "$LAB/$fn.pid"))"; continue; fi
    if [ "$fn" = hss ]; then
      # The token goes through the environment, not the command line (ps).
      HSS_API_LISTEN="$API_LISTEN" HSS_API_ADMIN_TOKEN="$TOKEN" \
        nohup "bin/$fn" --domain "$IMS_DOMAIN" >"$LAB/$fn.log" 2>&1 &
    elif [ "$fn" = scscf ] || [ "$fn" = icscf ]; then
      SCSCF_GRUU_SECRET="$GRUU" ICSCF_GRUU_SECRET="$GRUU" \
        nohup "bin/$fn" --domain "$IMS_DOMAIN" >"$LAB/$fn.log" 2>&1 &
    else
      nohup "bin/$fn" --domain "$IMS_DOMAIN" >"$LAB/$fn.log" 2>&1 &
    fi
    echo $! >"$LAB/$fn.pid"
    wait_ready "$fn"
    echo "lab: $fn ready (pid $(cat "$LAB/$fn.pid"), admin http://127.0.0.1:${ADMIN[$fn]})"
  done
  cat <<EOT

The lab runs (domain $IMS_DOMAIN, logs in $LAB/).
HSS provisioning API and console: http://$API_LISTEN/console/  (OpenAPI: http://$API_LISTEN/openapi.json)
  lab token (role admin, in $LAB/api-token): $TOKEN
Next:
  bin/imsctl subscriber add --impi alice@$IMS_DOMAIN --impu sip:alice@$IMS_DOMAIN --password alice
  or: curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' http://$API_LISTEN/api/v1/subscribers \\
        -d '{"impi":"bob@$IMS_DOMAIN","password":"bob","impus":[{"identity":"sip:bob@$IMS_DOMAIN"}]}'

  register a softphone to the P-CSCF at 127.0.0.1:5060 (docs/softphones.md)
  make lab-down    stops it
EOT
}

down() {
  for fn in pcscf icscf scscf hss; do
    [ -f "$LAB/$fn.pid" ] || continue
    pid=$(cat "$LAB/$fn.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      echo "lab: stopped $fn (pid $pid)"
    fi
    rm -f "$LAB/$fn.pid"
  done
}

status() {
  for fn in "${FUNCTIONS[@]}"; do
    if running "$fn"; then echo "$fn: running (pid $(cat "$LAB/$fn.pid"))"; else echo "$fn: stopped"; fi
  done
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status"; exit 2 ;;
esac
