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

# The planted bugs: with each, the models named MUST fail, on their own assertion, or the
# models do not bite. Built first, so a build error is not mistaken for the model catching it.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# must_catch <feature> <test file> <what it plants> <marker of the model's assertion> <model>...
must_catch() {
    local feature=$1 file=$2 what=$3 marker=$4 model
    shift 4
    echo "== $feature check: $* must fail with --features $feature"
    cargo test -p loom-tests --release --features "$feature" --no-run
    for model in "$@"; do
        if cargo test -p loom-tests --release --features "$feature" \
            --test "$file" -- --exact "$model" >"$log" 2>&1; then
            cat "$log"
            echo "FAIL: $model passed with $what: the loom models do not catch it" >&2
            exit 1
        fi
        if ! grep -q "$marker" "$log"; then
            cat "$log"
            echo "FAIL: $model failed with $what, but not on one of its assertions" >&2
            exit 1
        fi
        echo "== $what caught by $model:"
        grep -m1 -A1 "$marker" "$log" | sed 's/^/   /' | cut -c1-200
    done
}
# The state word's CAS made a load-then-store.
must_catch planted-bug models "a broken CAS" "panicked at loom-tests/tests/models.rs" \
    half_open_cap_1_admits_at_most_one_and_dropped_permits_release_their_slot
# The snapshot protocol's reads reversed (`window::snapshot`): a reader must never see a rate
# the history never reached.
must_catch planted-bug-reads windows "reversed snapshot reads" \
    "a state the history never passed through" \
    time_window_reads_never_overstate_a_rate count_window_reads_never_overstate_a_rate
echo "== loom.sh done in $(( $(date +%s) - start ))s"
