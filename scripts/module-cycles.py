#!/usr/bin/env python3
"""Fail when top-level modules of src/ depend on each other in a cycle (directly or through others).

What it counts: a top-level module is the first segment under src/ (`src/foo.rs` or `src/foo/`;
`lib.rs` and `main.rs` are the crate roots, not modules). Module A depends on module B when a
file of A names a `crate::B` path anywhere in code: `use crate::b::...;`, grouped uses
(`use crate::{b, c::d};`, nested groups and groups spread over several lines), and inline paths
(`crate::b::f(...)`, `crate::b::T`). Not counted: comments and doc comments, string literals,
items under `#[cfg(test)]` (test modules and test-only functions), and relative paths
(`super::super::b`), which the code does not use across top-level modules.

Prints each cycle (a strongly connected component of the graph, found with Tarjan's algorithm)
with one example file:line per edge inside it, and exits 1. Without a cycle it prints the
layers (layer 0 uses no other module; each module sits one layer above the highest module it
uses) and exits 0. Python 3 standard library only. Usage: scripts/module-cycles.py
"""

import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CRATE = re.compile(r"(?<![A-Za-z0-9_$])crate\s*::\s*")


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


def blank_comments_and_strings(text):
    """Replace comments and the insides of string and char literals by spaces (newlines kept)."""
    out = list(text)
    n = len(text)
    i = 0

    def blank(a, b):
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 260]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            start = i + 2 + len(hashes)
            end = text.find('"' + hashes, start)
            end = n if end < 0 else end + 1 + len(hashes)
            blank(start, end - 1 - len(hashes))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a, 'static).
            m = re.match(r"'(\\u\{[0-9A-Fa-f]+\}|\\.|[^\\'\n])'", text[i:i + 12])
            if m:
                blank(i + 1, i + len(m.group(0)) - 1)
                i += len(m.group(0))
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def blank_test_items(text):
    """Blank out `#[cfg(test)]` items (a test module or function and its braces, or up to `;`)."""
    out = []
    i = 0
    marker = re.compile(r"#\[cfg\(test\)\]")
    while True:
        m = marker.search(text, i)
        if not m:
            out.append(text[i:])
            break
        at = m.start()
        out.append(text[i:at])
        brace = text.find("{", at)
        semi = text.find(";", at)
        if brace < 0 or (0 <= semi < brace):
            end = semi + 1 if semi >= 0 else len(text)
        else:
            depth, j = 0, brace
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            end = j + 1
        # Keep the newlines so that reported line numbers stay right.
        out.append("\n" * text.count("\n", at, end))
        i = end
    return "".join(out)


def group_heads(text, open_at):
    """First segments of the items in the use group whose `{` is at open_at."""
    heads, depth, j, item_start = [], 0, open_at, open_at + 1
    while j < len(text):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                heads.append(text[item_start:j])
                break
        elif c == "," and depth == 1:
            heads.append(text[item_start:j])
            item_start = j + 1
        j += 1
    names = []
    for item in heads:
        m = IDENT.match(item.strip())
        if m:
            names.append(m.group(0))
    return names


def edges():
    """{(from, to): "src/file.rs:line"} with the first place each edge is seen."""
    mods = top_modules()
    found = {}
    for dirpath, dirs, files in os.walk(ROOT):
        dirs.sort()
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, ROOT)
            if rel in ("lib.rs", "main.rs"):
                continue
            src = module_of(rel)
            with open(path, encoding="utf-8") as fh:
                text = blank_test_items(blank_comments_and_strings(fh.read()))
            for m in CRATE.finditer(text):
                rest = m.end()
                if text.startswith("{", rest):
                    names = group_heads(text, rest)
                else:
                    ident = IDENT.match(text, rest)
                    names = [ident.group(0)] if ident else []
                line = text.count("\n", 0, m.start()) + 1
                for dst in names:
                    if dst in mods and dst != src:
                        found.setdefault((src, dst), f"src/{rel}:{line}")
    return mods, found


def sccs(nodes, adj):
    """Tarjan's strongly connected components."""
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
    layer = {}

    def depth(m):
        if m not in layer:
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
