# Shared by the README's two set-up commands (compose/demo.sh, tests/run.sh):
# install missing Debian packages, create .venv, install modelmon into it.
# Works on a fresh Debian/Ubuntu machine with Python >= 3.11 (as root or with sudo).

_sudo() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ensure_debian_packages COMMAND=PACKAGE ...: install PACKAGE when COMMAND is missing.
ensure_debian_packages() {
  local need=() pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || need+=("${pair#*=}")
  done
  python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
  if [ ${#need[@]} -gt 0 ]; then
    echo "modelmon: installing Debian packages: ${need[*]}"
    _sudo apt-get update -qq
    _sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
}

# ensure_venv EXTRAS: .venv with modelmon (editable) and the given extras.
ensure_venv() {
  [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$1]"
}
