#!/usr/bin/env bash
# Fuzz smoke runs, called by .ci/run: build every target of fuzz/ once, then run EACH for a
# bounded time on the stable toolchain, without a sanitizer (`-s none` needs no nightly).
# A crash, a panic, a timeout or an out-of-memory in any target fails CI (exit 1), after the
# other targets have had their run, with the reproducer's path printed.
#
# The whole script (build included, cargo-fuzz installation not) aims at OSSPIPE_FUZZ_BUDGET
# seconds (default 330, so about six minutes with the installation check); the time left after
# the build is shared evenly between the targets, each getting at least
# OSSPIPE_FUZZ_MIN_SECONDS (default 15).
#
# Reproduce a failure locally with the command the log prints, e.g.
#   cd fuzz && cargo fuzz run -s none --codegen-units 16 xml_bodies artifacts/xml_bodies/crash-...
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

BUDGET=${OSSPIPE_FUZZ_BUDGET:-330}
MIN_SECONDS=${OSSPIPE_FUZZ_MIN_SECONDS:-15}
# Release builds (20-30x the executions per second of a --dev build, for twice its build time),
# with several codegen units so rustc can use both cores on the largest crates.
BUILD_FLAGS=(-s none --codegen-units 16)
export CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

started=$(date +%s)
echo "fuzz-smoke: building every target ($(cargo fuzz --version))"
cargo fuzz build "${BUILD_FLAGS[@]}"

mapfile -t targets < <(cargo fuzz list)
if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz-smoke: no fuzz targets found" >&2
  exit 1
fi

failed=()
for index in "${!targets[@]}"; do
  target=${targets[$index]}
  left=$(( ${#targets[@]} - index ))
  remaining=$(( BUDGET - ($(date +%s) - started) ))
  seconds=$(( remaining / left ))
  if [ "$seconds" -lt "$MIN_SECONDS" ]; then
    seconds=$MIN_SECONDS
  fi
  echo "fuzz-smoke: $target for ${seconds}s"
  # -timeout: one input taking longer than 10 s is a hang; -rss_limit_mb: a leak or a bomb.
  log=$(mktemp)
  if cargo fuzz run "${BUILD_FLAGS[@]}" "$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || tail -n 5 "$log"
  else
    tail -n 200 "$log"
    failed+=("$target")
  fi
  rm -f "$log"
done

echo "fuzz-smoke: done in $(( $(date +%s) - started ))s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz-smoke: FAILED: ${failed[*]} (reproducers under fuzz/artifacts/)" >&2
  exit 1
fi
