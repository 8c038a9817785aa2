# Portcullis — run `just --list` for recipes. The two you need: `just demo` and `just test`.
set shell := ["bash", "-euo", "pipefail", "-c"]

wasm := "target/portcullis.wasm"
# wasm-opt's level: -O3 (speed, the default) or, with CARGO_PROFILE_RELEASE_OPT_LEVEL=z, -Oz for a module
# that starts faster and takes less memory (README, Performance: the trade measured).
wasm_opt_level := env_var_or_default("WASM_OPT_LEVEL", "-O3")

# Run everything CI runs: lints, core/shim tests, then real Envoy + oidc-provider + Chromium end to end.
test: (setup "rust" "wasm-opt" "envoy" "node" "browser" "prometheus" "playground" "clients") lint unit wasm e2e

# Install what a part needs (rust, wasm-opt, envoy, node, browser, bench, prometheus, playground, clients); idempotent.
setup *parts:
    scripts/setup.sh {{parts}}

lint: (setup "rust" "playground")
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    # The session, PKCE and policy core builds as no_std + alloc.
    cargo clippy -p portcullis-core --no-default-features -- -D warnings
    # The filter as Envoy runs it (clippy.toml bans the SDK's panicking host calls).
    cargo clippy -p portcullis-filter --target wasm32-wasip1 -- -D warnings
    # The playground as the browser runs it.
    cargo clippy -p portcullis-playground --target wasm32-unknown-unknown -- -D warnings

unit:
    cargo test --workspace

# Build the filter for wasm32-wasip1 and shrink it with wasm-opt -> target/portcullis.wasm
wasm: (setup "rust" "wasm-opt")
    cargo build -p portcullis-filter -p portcullis-noop-filter --target wasm32-wasip1 --release
    wasm-opt --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals \
        {{wasm_opt_level}} target/wasm32-wasip1/release/portcullis_filter.wasm -o {{wasm}}
    @ls -l target/wasm32-wasip1/release/portcullis_filter.wasm {{wasm}} | awk '{print $5, $9}'

# The Wasm image spec's "oci" variant as an OCI image layout in target/oci/portcullis/ (tagged with the
# workspace version) and as target/oci/portcullis.tar; prints both and the manifest digest (the WasmPlugin's
# `sha256`). `just oci --compat`: the "compat" variant (plugin.wasm in a tar+gzip layer) beside it.
# Push with one of these (none is installed here; crane takes the directory, not the tar):
#   oras cp --from-oci-layout target/oci/portcullis:0.1.0 registry.example.com/platform/portcullis:0.1.0
#   crane push target/oci/portcullis registry.example.com/platform/portcullis:0.1.0
#   skopeo copy oci-archive:target/oci/portcullis.tar docker://registry.example.com/platform/portcullis:0.1.0
# Package the filter as an OCI image for Istio's WasmPlugin and Envoy Gateway (scripts/oci-image.mjs)
oci *args: wasm
    node scripts/oci-image.mjs {{args}}

e2e: (setup "envoy" "node" "browser" "prometheus" "playground" "clients") wasm
    cd tests && node lib/envoy-yaml.mjs --check
    cd tests && node --test --test-concurrency=1 e2e/

# Start the oidc-provider IdP, an echo app and Envoy with Portcullis on http://localhost:8080
demo: (setup "rust" "wasm-opt" "envoy" "node") wasm
    node scripts/demo.mjs

# The configuration playground: the core as WebAssembly in a static page on http://127.0.0.1:8090 (PORT=...)
playground: playground-build
    node scripts/playground.mjs

# Build the playground into target/playground/ (wasm32-unknown-unknown core + wasm-bindgen + playground/www)
playground-build: (setup "rust" "playground")
    scripts/playground-build.sh

# Benchmark (Envoy --concurrency 1 and wrk on separate cores): writes target/bench/summary.json
bench *args: (setup "rust" "wasm-opt" "envoy" "node" "bench") wasm
    node bench/run.mjs {{args}}

# Instructions per request of Envoy under callgrind (noise-free; ~3 min per case): target/bench/instructions.json
bench-instructions: (setup "rust" "wasm-opt" "envoy" "node") wasm
    node bench/instructions.mjs

# Regenerate envoy/envoy.yaml and the stats bootstraps for Istio and Envoy Gateway from tests/lib/envoy-config.mjs
envoy-yaml:
    cd tests && node lib/envoy-yaml.mjs --write

# `just fuzz` runs every target 60 s, `just fuzz 5` is the CI smoke, `just fuzz 600 jwt path` picks
# targets; prints executions, exec/s and coverage per target and exits non-zero on a crash (fuzz/run.sh).
# Coverage-guided fuzzing of the core on the stable toolchain (installs cargo-fuzz 0.13.2 if missing)
fuzz *args:
    fuzz/run.sh {{args}}
