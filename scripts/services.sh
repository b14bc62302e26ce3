#!/usr/bin/env bash
# Starts the real services the test suite talks to, if they are not up:
# PostgreSQL 15 at 127.0.0.1:5432 (trust auth, database `test`) and Mosquitto
# at 127.0.0.1:1883.
set -euo pipefail
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "services: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  echo "services: starting Mosquitto" >&2
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 1; done
fi
echo "services: PostgreSQL and Mosquitto are up" >&2
