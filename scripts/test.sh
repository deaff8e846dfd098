#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (Python 3.11 present): installs the Debian
# packages the tests use when missing, the Python packages, starts PostgreSQL and Redis when
# they are not running, then runs pytest. Extra arguments go to pytest.
# The run is bounded (CALLCENTER_TEST_TIMEOUT seconds, default 3000): a hung test makes CI
# fail with pytest's summary of where it stopped instead of using up the job's time.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
export CALLCENTER_SHARED="${CALLCENTER_SHARED:-$(cd "$REPO/.." && pwd)/shared}"

# shellcheck source=scripts/system-deps.sh
. scripts/system-deps.sh
apt_install_missing \
  pg_ctlcluster:postgresql redis-server:redis-server espeak-ng:espeak-ng chromium:chromium \
  /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc:fonts-noto-cjk pdftotext:poppler-utils

as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

start_postgres() {
  local version
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  # tests/conftest.py connects as postgres over 127.0.0.1 without a password.
  if ! psql -h 127.0.0.1 -U postgres -w -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    echo "allowing passwordless postgres over 127.0.0.1 in $hba (test machine)" >&2
    sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
    as_postgres psql -d postgres -Atc 'select pg_reload_conf()' >/dev/null
  fi
  for _ in $(seq 50); do
    psql -h 127.0.0.1 -U postgres -w -d postgres -Atc 'select 1' >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2
  return 1
}

start_redis() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 50); do
      redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
      sleep 0.1
    done
    echo "Redis does not answer on 127.0.0.1:6379" >&2
    return 1
  fi
}

start_postgres
start_redis

EXTRAS=test
# shellcheck source=scripts/python-env.sh
. scripts/python-env.sh

# In CI every test is named as it starts (-v), so a test that hangs is named in the log.
verbosity=-q
if [ -n "${CI:-}" ]; then verbosity=-v; fi
set +e
# SIGINT first: pytest stops and prints its summary; SIGKILL a minute later.
timeout --foreground -s INT -k 60 "${CALLCENTER_TEST_TIMEOUT:-3000}" \
  "$PY" -m pytest "$verbosity" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: treated as a failure" >&2
  exit 1
fi
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "the test suite did not finish within ${CALLCENTER_TEST_TIMEOUT:-3000} s" >&2
  exit 1
fi
exit "$status"
