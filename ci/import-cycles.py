#!/usr/bin/env python3
"""Fails when two sibling files of a crate import each other.

A module's root (lib.rs, mod.rs) re-exports its children and they import
from it: that pair is how Rust modules are built and is allowed. Two files
that are not parent and child and name each other in `use` are a cycle:
issue #16 asks for none in core and sim. Reads `use crate::…`, `use super::…`
and `use self::…` (and a root's `use child::…`) outside `#[cfg(test)] mod tests`.
"""
import os
import re
import sys


def module_path(root, path):
    parts = os.path.relpath(path, root)[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def imports(root, by_module, path):
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", open(path, encoding="utf-8").read())[0]
    me = module_path(root, path)
    is_root = os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs")
    found = set()
    for m in re.finditer(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", text, re.M | re.S):
        tree = m.group(1).strip()
        segs = [s.strip() for s in tree.split("{")[0].split("::") if s.strip()]
        if not segs:
            continue
        if segs[0] == "crate":
            base, segs = (), segs[1:]
        elif segs[0] == "super":
            base, segs = me[:-1], segs[1:]
            while segs and segs[0] == "super":
                base, segs = base[:-1], segs[1:]
        elif segs[0] == "self":
            base, segs = me, segs[1:]
        elif is_root and me + (segs[0],) in by_module:
            base = me
        else:
            continue
        best = base
        for seg in segs:
            if base + (seg,) not in by_module:
                break
            base = best = base + (seg,)
        if "{" in tree:
            for item in re.findall(r"\b([a-z_][a-z0-9_]*)\b", tree.split("{", 1)[1]):
                if best + (item,) in by_module:
                    found.add(by_module[best + (item,)])
        if best in by_module:
            found.add(by_module[best])
    found.discard(path)
    return found


def check(root):
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".rs")]
    by_module = {module_path(root, f): f for f in files}
    edges = {f: imports(root, by_module, f) for f in files}
    bad = []
    for a in sorted(files):
        for b in sorted(edges[a]):
            if a < b and a in edges[b]:
                ma, mb = module_path(root, a), module_path(root, b)
                if ma == mb[:-1] or mb == ma[:-1]:
                    continue
                bad.append((os.path.relpath(a, root), os.path.relpath(b, root)))
    return bad


def main():
    failed = False
    for root in sys.argv[1:]:
        for a, b in check(root):
            print(f"{root}: {a} and {b} import each other")
            failed = True
    if failed:
        sys.exit(1)
    print("no two sibling files import each other in", ", ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
