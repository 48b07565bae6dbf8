#!/usr/bin/env python3
"""Fail when two top-level modules of src/ depend on each other, directly or through others.

A module's dependencies are the `crate::<module>` paths its files name (in `use` lines and in
code), outside `#[cfg(test)]` blocks. Prints each cycle (a strongly connected component of the
graph) with one file:line per edge, and the layers (modules in dependency order) when there is
none. Usage: scripts/module-cycles.py [--layers]
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
# `use crate::{a, b::c}` groups.
GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)


def top_modules():
    mods = set()
    for name in os.listdir(ROOT):
        path = os.path.join(ROOT, name)
        if name.endswith(".rs") and name not in ("lib.rs", "main.rs"):
            mods.add(name[:-3])
        elif os.path.isdir(path):
            mods.add(name)
    return mods


def module_of(rel):
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def strip_tests(text):
    """Blank out `#[cfg(test)]` items (a test module or function and its braces)."""
    out = []
    i = 0
    while True:
        at = text.find("#[cfg(test)]", i)
        if at < 0:
            out.append(text[i:])
            break
        out.append(text[i:at])
        brace = text.find("{", at)
        semi = text.find(";", at)
        if brace < 0 or (0 <= semi < brace):
            i = semi + 1 if semi >= 0 else len(text)
            continue
        depth = 0
        j = brace
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        # Keep the line count so reported line numbers stay right.
        out.append("\n" * text.count("\n", at, j + 1))
        i = j + 1
    return "".join(out)


def edges():
    mods = top_modules()
    found = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, ROOT)
            if rel in ("lib.rs", "main.rs"):
                continue
            src = module_of(rel)
            with open(path, encoding="utf-8") as fh:
                text = strip_tests(fh.read())
            lines = text.split("\n")
            for n, line in enumerate(lines, 1):
                stripped = line.strip()
                if stripped.startswith("//"):
                    continue
                names = PATH.findall(line)
                for group in GROUP.findall(line):
                    names += [g.strip().split("::")[0] for g in group.split(",") if g.strip()]
                for dst in names:
                    if dst in mods and dst != src:
                        found.setdefault((src, dst), f"src/{rel}:{n}")
    return mods, found


def sccs(nodes, adj):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(adj.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    mods, found = edges()
    adj = {}
    for (a, b) in found:
        adj.setdefault(a, set()).add(b)
    cycles = [c for c in sccs(mods, adj) if len(c) > 1]
    if cycles:
        for c in cycles:
            print("cycle between top-level modules: " + ", ".join(c))
            for (a, b), where in sorted(found.items()):
                if a in c and b in c:
                    print(f"  {a} -> {b}  ({where})")
        sys.exit(1)
    if "--layers" in sys.argv:
        # Layer = 1 + the highest layer of what a module uses.
        layer = {}

        def depth(m):
            if m not in layer:
                layer[m] = 0
                layer[m] = 1 + max((depth(d) for d in adj.get(m, ())), default=-1)
            return layer[m]

        for m in mods:
            depth(m)
        for level in range(max(layer.values(), default=0) + 1):
            names = sorted(m for m in mods if layer[m] == level)
            print(f"layer {level}: " + ", ".join(names))
    print(f"no cycles between the {len(mods)} top-level modules of src/")


if __name__ == "__main__":
    main()
