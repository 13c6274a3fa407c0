#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 with a `test` database (trust auth), starting or
# installing it when it is missing. Prints what it did; never fails by itself: the tests decide
# (under CI=true they fail when PostgreSQL is unreachable, elsewhere its leg is skipped).
set -uo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! command -v pg_isready >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing PostgreSQL from Debian's packages"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || true
fi
if ! ready && command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$version" ]; then
    conf="/etc/postgresql/$version/main"
    # Local trust auth over TCP, as on the project's machines.
    if [ -w "$conf/pg_hba.conf" ] && ! grep -q "^host all all 127.0.0.1/32 trust" "$conf/pg_hba.conf"; then
      sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
    fi
    echo "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  fi
fi
for _ in $(seq 1 20); do ready && break; sleep 0.5; done
if ready; then
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
  echo "PostgreSQL is ready on 127.0.0.1:5432"
else
  echo "PostgreSQL is not reachable on 127.0.0.1:5432"
fi
exit 0
