#!/usr/bin/env bash
# Builds the configuration playground into target/playground/: portcullis-core compiled for
# wasm32-unknown-unknown (playground/), bound to JS by wasm-bindgen (pkg/), and the static page
# (playground/www/). Incremental: when nothing changed it takes a couple of seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# The wasm32-unknown-unknown target and the matching wasm-bindgen-cli (a no-op once installed).
scripts/setup.sh playground

want=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' playground/Cargo.toml)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $want" ]; then
  echo "playground: wasm-bindgen $want is needed (found: $(wasm-bindgen --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# The workspace's release profile strips symbols for the filter; wasm-bindgen needs the module's
# target_features section to pick its glue, so this build keeps it and wasm-bindgen drops the names.
CARGO_PROFILE_RELEASE_STRIP=false \
  cargo build -p portcullis-playground --target wasm32-unknown-unknown --release
out=target/playground
mkdir -p "$out"
wasm-bindgen --target web --remove-name-section --remove-producers-section \
  --out-dir "$out/pkg" target/wasm32-unknown-unknown/release/portcullis_playground.wasm
cp playground/www/* "$out/"
ls -l "$out/pkg/portcullis_playground_bg.wasm" | awk '{print "playground: " $9 " " $5 " bytes"}'
