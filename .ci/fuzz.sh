#!/usr/bin/env bash
# cargo-fuzz targets (fuzz/fuzz_targets/): differential (breaker vs the sequential reference
# model in tests/model/mod.rs), config (arbitrary builder inputs), time (arbitrary clock jumps).
# Each runs for FUZZ_SECONDS (default 60) from its committed seed corpus (fuzz/corpus/<target>/
# seed-*); any crash fails the script and leaves the input in fuzz/artifacts/<target>/.
#
#   bash .ci/fuzz.sh                       # 60 s per target
#   FUZZ_SECONDS=600 bash .ci/fuzz.sh time # longer, one target
#
# Needs rustup's nightly toolchain. Builds with debug assertions (overflow checks) and without
# a sanitizer: breakerbox has no unsafe code, and an uninstrumented build fuzzes several times
# faster (set FUZZ_SANITIZER=address to change that).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(differential config time)
# The fuzz crate has its own workspace and target dir (fuzz/target), like cargo-fuzz expects.
unset CARGO_TARGET_DIR

if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

start=$(date +%s)
echo "== building fuzz targets (sanitizer $sanitizer, debug assertions on)"
for t in "${targets[@]}"; do
    cargo +nightly fuzz build -s "$sanitizer" --debug-assertions "$t"
done
echo "== built in $(( $(date +%s) - start ))s"

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    # Fuzz in a scratch copy of the corpus: new inputs are not committed (.gitignore keeps
    # only seed-*), and the committed seeds are never rewritten.
    work=$(mktemp -d)
    cp "corpus/$t"/seed-* "$work"/ 2>/dev/null || true
    echo "== fuzzing $t for ${seconds}s"
    t0=$(date +%s)
    log="$work.log"
    if ! cargo +nightly fuzz run -s "$sanitizer" --debug-assertions "$t" "$work" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 80 "$log"
        rm -rf "$work" "$log"
        echo "FAIL: fuzz target $t found a crash (input saved under fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    # libFuzzer's summary: executions, speed, coverage.
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|#[0-9]+ +DONE)' "$log" || true
    rm -rf "$work" "$log"
    echo "== $t: no crash in $(( $(date +%s) - t0 ))s"
done
echo "== fuzz.sh done in $(( $(date +%s) - start ))s"
