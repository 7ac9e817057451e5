#!/usr/bin/env python3
"""Fails when a dependency needs a newer Rust than a crate declares.

For every published workspace crate, lists its locked dependency tree
(`cargo tree`, normal and build dependencies with all its features, for
this host, as a user of the crate gets them; dev-dependencies do not reach
users) and takes the highest `rust-version` any dependency declares. The crate's own value must
be at least that. Prints what each crate needs and which dependency sets it.
"""
import json
import subprocess
import sys


def version(text):
    return tuple(int(part) for part in text.split("."))


def shown(v):
    return ".".join(str(part) for part in v)


def main():
    host = next(
        line.split(": ", 1)[1]
        for line in subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout.splitlines()
        if line.startswith("host: ")
    )
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", host],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    by_name = {(p["name"], p["version"]): p for p in meta["packages"]}
    members = sorted((p for p in meta["packages"] if p["id"] in meta["workspace_members"]), key=lambda p: p["name"])

    failed = False
    for package in members:
        declared = package.get("rust_version")
        if package.get("publish") == [] or not declared:
            continue
        # `cargo tree -p` resolves features for this crate alone (metadata's
        # graph unifies the whole workspace); all features, since a user may
        # enable any of them.
        tree = subprocess.run(
            ["cargo", "tree", "--locked", "-p", package["name"], "--all-features", "-e", "normal,build",
             "--prefix", "none", "--format", "{p}", "--target", host],
            capture_output=True, text=True, check=True,
        ).stdout
        needed, by, seen = (0,), "nothing", set()
        for line in tree.splitlines():
            fields = line.split()
            if len(fields) < 2 or not fields[1].startswith("v"):
                continue
            key = (fields[0], fields[1][1:])
            if key in seen or key[0] == package["name"]:
                continue
            seen.add(key)
            dep = by_name.get(key)
            if dep and dep.get("rust_version") and version(dep["rust_version"]) > needed:
                needed, by = version(dep["rust_version"]), f"{dep['name']} {dep['version']}"
        ok = version(declared) >= needed
        failed |= not ok
        print(
            f"{'ok  ' if ok else 'FAIL'} {package['name']}: declares {declared}, "
            f"its {len(seen)} dependencies need {shown(needed)} ({by})"
        )
    if failed:
        print("\nraise rust-version to what its dependencies need (or hold the dependency back)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
