# Sourced by scripts/test.sh and scripts/demo.sh: sets PY to a Python with the project
# installed (editable) plus the extras named in $EXTRAS ("test" or empty).
#
# On Debian's system Python (PEP 668 "externally managed") a virtualenv is created in
# .venv; an interpreter that accepts installs (pyenv, an active venv, CI images) is used
# as it is.

PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "python3 (3.11+) is needed" >&2
  exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "$PY is $("$PY" -V 2>&1); callcenter needs Python 3.11 or newer" >&2
  exit 1
fi
export PIP_ROOT_USER_ACTION=ignore  # CI runs as root; the warning is noise there

externally_managed() {
  "$PY" - <<'PYCODE'
import sys, sysconfig, pathlib
in_venv = sys.prefix != sys.base_prefix
marker = pathlib.Path(sysconfig.get_paths()["stdlib"]) / "EXTERNALLY-MANAGED"
sys.exit(0 if (marker.exists() and not in_venv) else 1)
PYCODE
}

if externally_managed; then
  if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -c "import ensurepip" >/dev/null 2>&1; then
      sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv python3-pip
    fi
    "$PY" -m venv .venv
  fi
  PY="$PWD/.venv/bin/python"
fi

spec="."
if [ -n "${EXTRAS:-}" ]; then spec=".[${EXTRAS}]"; fi
"$PY" -m pip install --quiet --disable-pip-version-check -e "$spec"
export PY
