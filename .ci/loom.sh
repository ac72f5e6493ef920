#!/usr/bin/env bash
# loom models of breakerbox's concurrency protocol (loom-tests/tests/models.rs), bounded, then
# the planted-bug check: with `--features planted-bug` (the state word's CAS becomes a
# load-then-store) the half-open cap model MUST fail, or the models do not bite.
#
#   bash .ci/loom.sh                    # LOOM_MAX_PREEMPTIONS=3 by default (~3-4 min here)
#   LOOM_MAX_PREEMPTIONS=2 bash .ci/loom.sh
#
# Builds go to their own target dir (RUSTFLAGS differ, so sharing target/ would invalidate the
# normal build): $LOOM_TARGET_DIR, default <repo>/target/loom.
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTFLAGS="--cfg breakerbox_loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-$PWD/target/loom}"
# Loom prints every failing interleaving's trace when this is set; keep CI logs short.
unset LOOM_LOG LOOM_LOCATION || true

start=$(date +%s)
echo "== loom models (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS, target $CARGO_TARGET_DIR)"
cargo test -p loom-tests --release
echo "== loom models passed in $(( $(date +%s) - start ))s"

# The planted bug: the model must FAIL. Build first, so a build error is not mistaken for the
# model catching the bug.
bug_model=half_open_cap_1_admits_at_most_one_and_dropped_permits_release_their_slot
echo "== planted-bug check: $bug_model must fail with --features planted-bug"
cargo test -p loom-tests --release --features planted-bug --no-run
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if cargo test -p loom-tests --release --features planted-bug \
    --test models -- --exact "$bug_model" >"$log" 2>&1; then
    cat "$log"
    echo "FAIL: $bug_model passed with the planted bug: the loom models do not catch a broken CAS" >&2
    exit 1
fi
if ! grep -q "panicked at loom-tests/tests/models.rs" "$log"; then
    cat "$log"
    echo "FAIL: $bug_model failed with the planted bug, but not on one of its assertions" >&2
    exit 1
fi
echo "== planted bug caught by $bug_model:"
grep -m1 -A1 "panicked at loom-tests/tests/models.rs" "$log" | sed 's/^/   /' | cut -c1-200
# The second planted bug: the snapshot protocol's reads reversed (`window::snapshot`). The
# bracket models MUST fail: a reader must never see a rate the history never reached.
echo "== planted-bug-reads check: the bracket models must fail with --features planted-bug-reads"
cargo test -p loom-tests --release --features planted-bug-reads --no-run
for reads_model in time_window_reads_never_overstate_a_rate count_window_reads_never_overstate_a_rate; do
    if cargo test -p loom-tests --release --features planted-bug-reads \
        --test windows -- --exact "$reads_model" >"$log" 2>&1; then
        cat "$log"
        echo "FAIL: $reads_model passed with reversed snapshot reads: the model does not catch them" >&2
        exit 1
    fi
    if ! grep -q "a state the history never passed through" "$log"; then
        cat "$log"
        echo "FAIL: $reads_model failed with reversed reads, but not on its bracket assertion" >&2
        exit 1
    fi
    echo "== reversed reads caught by $reads_model:"
    grep -m1 "a state the history never passed through" "$log" | sed 's/^/   /' | cut -c1-200
done
echo "== loom.sh done in $(( $(date +%s) - start ))s"
