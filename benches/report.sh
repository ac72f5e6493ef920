#!/usr/bin/env bash
# Regenerates BENCHMARKS.md from one run: criterion benches (breakerbox vs peers), the tower
# layer bench, latency percentiles, the memory report and the allocation test.
# ~10 minutes on a 2-core machine (after compilation).
#
#   bash benches/report.sh
#
# Environment: CARGO_TARGET_DIR (default ./target), BENCH_THREADS (default 2),
# BENCH_WARMUP / BENCH_MEASURE (criterion seconds, default 1 / 3).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export BENCH_THREADS="${BENCH_THREADS:-2}"
WARMUP="${BENCH_WARMUP:-1}"
MEASURE="${BENCH_MEASURE:-3}"
OUT="$CARGO_TARGET_DIR/bench-report"
CRIT="$CARGO_TARGET_DIR/criterion"
PROFILE=(--profile bench)   # the benches' optimized profile, so everything builds once

echo "== building"
B=(-p breakerbox-bench)   # the peers and the tooling live in the benches/ member
cargo bench --no-run "${B[@]}" --bench breakers
cargo bench --no-run "${B[@]}" --bench tower
cargo build "${PROFILE[@]}" "${B[@]}" --example latency --example memory --example bench_report
cargo test "${PROFILE[@]}" -p breakerbox --test alloc --no-run

rm -rf "$OUT" "$CRIT"
mkdir -p "$OUT"
{
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "cores: $(nproc) ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core)"
  echo "kernel: $(uname -sr)"
  echo "rustc: $(rustc -V)"
  echo "version: $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted src changes')"
  echo "peers: $(for p in failsafe recloser tower-resilience-circuitbreaker criterion hdrhistogram; do
      awk -v n="$p" '$0=="name = \""n"\""{getline; gsub(/version = |"/,""); printf "%s %s, ", n, $0; exit}' Cargo.lock; done | sed 's/, $//')"
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "load_before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "threads: $BENCH_THREADS"
  echo "warmup: $WARMUP"
  echo "measure: $MEASURE"
} > "$OUT/env.txt"

echo "== criterion"
cargo bench "${B[@]}" --bench breakers -- --warm-up-time "$WARMUP" --measurement-time "$MEASURE" --noplot \
  | tee "$OUT/criterion.txt"
cargo bench "${B[@]}" --bench tower -- --warm-up-time "$WARMUP" --measurement-time "$MEASURE" --noplot \
  | tee -a "$OUT/criterion.txt"

echo "== latency"
cargo run -q "${PROFILE[@]}" "${B[@]}" --example latency | tee "$OUT/latency.md"
echo "== memory"
cargo run -q "${PROFILE[@]}" "${B[@]}" --example memory | tee "$OUT/memory.md"
echo "== allocations"
cargo test "${PROFILE[@]}" -p breakerbox --test alloc 2>&1 | tee "$OUT/alloc.txt" || true

echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"
cargo run -q "${PROFILE[@]}" "${B[@]}" --example bench_report -- "$OUT" "$CRIT" BENCHMARKS.md
echo "== wrote BENCHMARKS.md"
