#!/usr/bin/env bash
# The demo on a fresh Debian machine: installs the project, then runs
# `callcenter demo` (simulated Asterisk + the service + generated calls, embedded defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
export CALLCENTER_SHARED="${CALLCENTER_SHARED:-$(cd .. && pwd)/shared}"
# shellcheck source=scripts/system-deps.sh
. scripts/system-deps.sh
apt_install_missing espeak-ng:espeak-ng
EXTRAS=""
# shellcheck source=scripts/python-env.sh
. scripts/python-env.sh
exec "$PY" -m callcenter demo "$@"
