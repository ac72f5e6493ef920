#!/usr/bin/env python3
"""The MSRV check, without downloading toolchains: breakerbox's `rust-version` must be at least
the highest `rust-version` declared by any crate it builds with (every feature on, normal and
build dependencies, transitively, as locked in Cargo.lock), and no higher than needed.

    python3 .ci/msrv.py            # prints the crate that sets the floor
"""
import json
import subprocess
import sys

# The platform checked (Linux x86-64, where CI runs; the same walk with another target triple
# gives that platform's floor, e.g. `windows-core` raises it on Windows).
TARGET = sys.argv[1] if len(sys.argv) > 1 else "x86_64-unknown-linux-gnu"


def version(v):
    parts = [int(p) for p in (v or "0").split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


meta = json.loads(
    subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--all-features",
         "--filter-platform", TARGET],
        text=True,
    )
)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = next(p for p in meta["packages"] if p["name"] == "breakerbox" and p["source"] is None)

# Walk normal and build edges only (dev-dependencies do not build for a user of the crate).
seen, stack = set(), [root["id"]]
while stack:
    pid = stack.pop()
    if pid in seen:
        continue
    seen.add(pid)
    for dep in nodes[pid]["deps"]:
        kinds = {k["kind"] for k in dep["dep_kinds"]}
        if kinds & {None, "build"}:
            stack.append(dep["pkg"])

seen.discard(root["id"])
floor = max(seen, key=lambda pid: version(packages[pid].get("rust_version")))
need = version(packages[floor].get("rust_version"))
declared = version(root.get("rust_version"))
name = f"{packages[floor]['name']} {packages[floor]['version']}"
print(f"{TARGET}: declared rust-version {root.get('rust_version')}; the dependency graph needs "
      f"{'.'.join(map(str, need))} ({name}); {len(seen)} crates checked")
if declared < need:
    sys.exit(f"FAIL: rust-version {root.get('rust_version')} is below what {name} declares")
if declared > need:
    sys.exit(f"FAIL: rust-version {root.get('rust_version')} is above the real floor "
             f"{'.'.join(map(str, need))}: lower it (or say why in Cargo.toml)")
