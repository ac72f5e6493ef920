#!/usr/bin/env bash
# Every test of the workspace: unit, integration (incl. real HTTP servers on 127.0.0.1),
# property (proptest against the reference model), concurrency, allocation, and doc tests,
# with every feature on. The loom models and fuzz targets have their own scripts
# (.ci/loom.sh, .ci/fuzz.sh); .ci/run runs everything. Then the window-tag tests again with
# 3-bit tags. Last, the Python package's tests (.ci/python.sh: wheel, pytest, short benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features

# The same long-horizon, defect and unit tests with 3-bit window tags (`--cfg
# breakerbox_narrow_tags`), so tags wrap every 8 generations: 100,000 outage cycles wrap them
# 25,000 times. Own target dir (RUSTFLAGS differ from the normal build's).
CARGO_TARGET_DIR="${NARROW_TARGET_DIR:-$PWD/target/narrow}" RUSTFLAGS="--cfg breakerbox_narrow_tags" \
    cargo test --lib --test horizons --test defects --test transitions --test model_test --test oracle

# The Python package (python/, outside the cargo workspace): its own script.
if [ "${BREAKERBOX_SKIP_PYTHON:-0}" != 1 ]; then
    bash .ci/python.sh
fi
