#!/usr/bin/env bash
# The core's unit tests (src/**, `cargo test --lib`) under Miri, which checks for undefined
# behaviour, including in the dependencies' unsafe code (crossbeam-utils, arc-swap, papaya,
# strength_reduce) that the windows and the state word go through. breakerbox itself forbids
# unsafe code.
#
# The unit tests use no clock or the ManualClock, never quanta's TSC clock (which Miri cannot
# run), so Miri's isolation stays on. If the nightly toolchain's miri component cannot be
# installed (an offline machine, a nightly without miri), this prints why and exits 0.
#
#   bash .ci/miri.sh
set -uo pipefail
cd "$(dirname "$0")/.."

skip() {
    echo "== miri: SKIPPED: $*"
    exit 0
}

command -v rustup >/dev/null 2>&1 || skip "rustup is not installed"
rustup toolchain list | grep -q '^nightly' ||
    rustup toolchain install nightly --profile minimal >/dev/null 2>&1 ||
    skip "no nightly toolchain and it cannot be installed"
rustup component add --toolchain nightly miri rust-src >/dev/null 2>&1 ||
    skip "\`rustup component add --toolchain nightly miri rust-src\` failed (offline, or this nightly has no miri)"

set -e
export CARGO_TARGET_DIR="${MIRI_TARGET_DIR:-$PWD/target/miri}"
start=$(date +%s)
echo "== miri: building the sysroot (once per toolchain)"
cargo +nightly miri setup
echo "== miri: cargo +nightly miri test --lib"
cargo +nightly miri test --lib
echo "== miri.sh done in $(( $(date +%s) - start ))s"
