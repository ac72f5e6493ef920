#!/usr/bin/env bash
# Every test of the workspace: unit, integration (incl. real HTTP servers on 127.0.0.1),
# property (proptest against the reference model), concurrency, allocation, and doc tests,
# with every feature on. The loom models and fuzz targets have their own scripts
# (.ci/loom.sh, .ci/fuzz.sh); .ci/run runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features
