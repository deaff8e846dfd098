# Sourced: install the Debian packages named in the arguments that are missing.
# Each entry is "command:package" or "/path/of/a/file:package"; apt-get runs only when a
# command (or file) is absent.

apt_install_missing() {
  local missing=() entry cmd pkg
  for entry in "$@"; do
    cmd="${entry%%:*}"; pkg="${entry#*:}"
    if [ "${cmd#/}" != "$cmd" ]; then
      [ -e "$cmd" ] || missing+=("$pkg")
    else
      command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
