#!/usr/bin/env bash
# The Python package (python/): format and lint its Rust crate (outside the cargo workspace),
# build the abi3 wheel with maturin into a venv made from PyPI packages, run the pytest suite,
# run the test suites of pybreaker (vendored in python/tests/peers/vendor/), circuitbreaker and
# aiobreaker (their sdists, from PyPI) against the drop-in modules, and run the benchmark
# against them with a small count.
#
#   bash .ci/python.sh            # venv in target/py-venv (BREAKERBOX_VENV to change)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV="${BREAKERBOX_VENV:-$ROOT/target/py-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/python}"
t0=$(date +%s)
step() { echo; echo "=== python [$(( $(date +%s) - t0 ))s] $*"; }

step "rustfmt (python/)"
cargo fmt --manifest-path python/Cargo.toml -- --check

step "clippy (python/)"
cargo clippy --manifest-path python/Cargo.toml --all-targets -- -D warnings

step "venv ($VENV)"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PY" -m venv "$VENV" 2>/dev/null; then
        # Debian's python3 has venv in a package of its own.
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$VENV"; "$PY" -m venv "$VENV"
    fi
fi
"$VENV/bin/python" --version
"$VENV/bin/pip" install -q --disable-pip-version-check \
    maturin pytest pytest-asyncio httpx fastapi starlette uvicorn \
    pybreaker circuitbreaker aiobreaker requests \
    tornado fakeredis redis pytest-mock  # what the peers' own test suites import

step "wheel (maturin build --release, abi3 for CPython >= 3.9)"
rm -rf "$CARGO_TARGET_DIR/wheels"
(cd python && "$VENV/bin/maturin" build --release -i "$VENV/bin/python" -o "$CARGO_TARGET_DIR/wheels")
"$VENV/bin/pip" install -q --force-reinstall --no-deps "$CARGO_TARGET_DIR"/wheels/breakerbox_rs-*.whl

step "pytest (python/tests)"
(cd python && "$VENV/bin/pytest" -q -p no:cacheprovider tests)

valkey=$(find "$ROOT/target/valkey" -type f -name valkey-server 2>/dev/null | head -n 1 || true)
if [ -n "$valkey" ]; then
    step "pytest tests/test_fleet.py on Valkey ($valkey, unpacked by .ci/valkey.sh)"
    (cd python && BREAKERBOX_REDIS_SERVER="$valkey" "$VENV/bin/pytest" -q -p no:cacheprovider tests/test_fleet.py)
fi

step "the peers' test suites against breakerbox_rs.pybreaker / .circuitbreaker / .aiobreaker"
"$VENV/bin/python" python/tests/peers/run_peers.py --work "$CARGO_TARGET_DIR/peers"

step "benchmark (short run; the full one writes python/BENCHMARKS.md)"
"$VENV/bin/python" python/bench/bench.py --calls "${BENCH_CALLS:-20000}" --repeats "${BENCH_REPEATS:-3}"

step "python done in $(( $(date +%s) - t0 ))s"
