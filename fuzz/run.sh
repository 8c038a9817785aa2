#!/usr/bin/env bash
# Runs the cargo-fuzz targets of portcullis-core on the stable toolchain (no sanitizer: `-s none`).
#
#   fuzz/run.sh [SECONDS] [TARGET...]     each target (default: all) for SECONDS (default 60)
#   FUZZ_RUNS=N fuzz/run.sh [SECONDS] ...  each target for N executions (or SECONDS, whichever comes
#                                          first; 0 seconds: no time limit)
#
# Installs cargo-fuzz 0.13.2 if it is missing (idempotent), builds every target once, then runs them one
# after another, each on a scratch corpus (fuzz/corpus-work/<target>, git-ignored) seeded read-only from
# the committed fuzz/corpus/<target> and fuzz/regressions/<target> (past findings, replayed every run),
# with fuzz/dicts/<target>.dict when there is one. Prints, per
# target, libFuzzer's final execution count and rate and the coverage reached; a crash leaves its input
# in fuzz/artifacts/<target>/ and makes the script exit non-zero (after running the other targets).
# Logs: fuzz/target/fuzz-logs/<target>.log. Replay a crash: `fuzz/run.sh replay TARGET FILE`.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTUP_TOOLCHAIN=stable
CARGO_FUZZ_VERSION=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --quiet
fi

if [ "${1:-}" = replay ]; then
  shift
  exec cargo fuzz run -s none "$1" "$2"
fi

secs="${1:-60}"
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi

mkdir -p target/fuzz-logs
echo "fuzz: building ${targets[*]}"
if [ ${#targets[@]} -eq 1 ]; then build=("${targets[0]}"); else build=(); fi
cargo fuzz build -s none "${build[@]}" >target/fuzz-logs/build.log 2>&1 || { cat target/fuzz-logs/build.log; exit 1; }

failed=()
printf '%-16s %12s %10s %8s %8s %s\n' target executions exec/s cov ft result
for t in "${targets[@]}"; do
  mkdir -p "corpus-work/$t" "corpus/$t"
  args=(-print_final_stats=1)
  [ -n "${FUZZ_RUNS:-}" ] && args+=("-runs=$FUZZ_RUNS")
  [ "$secs" -gt 0 ] && args+=("-max_total_time=$secs")
  [ -f "dicts/$t.dict" ] && args+=("-dict=dicts/$t.dict")
  log="target/fuzz-logs/$t.log"
  set +e
  dirs=("corpus-work/$t" "corpus/$t")
  [ -d "regressions/$t" ] && dirs+=("regressions/$t")
  cargo fuzz run -s none "$t" "${dirs[@]}" -- "${args[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  cov=$(grep -o ' cov: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  ft=$(grep -o ' ft: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | sed 's/Test unit written to //' | tail -1 || true)
    result="CRASH (${artifact:-no artifact, rc $rc}; log fuzz/$log)"
    failed+=("$t")
  fi
  printf '%-16s %12s %10s %8s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$result"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (panic messages in fuzz/target/fuzz-logs/)" >&2
  exit 1
fi
