#!/usr/bin/env python3
"""Finds import cycles between the modules (files) of a crate.

Usage: tools/import_cycles.py CRATE/src [CRATE/src ...]
Prints each cycle with its edges and exits 1 when there is one.

An edge A -> B means module A names an item that module B defines, through a
`use` or a path in code (`super::x::f`, `crate::m::T`, `child::g`). Paths are
resolved through `use` re-exports to the module that defines the item, so a
parent that only declares and re-exports its children (`mod x; pub use
x::T;`) does not depend on them. `#[cfg(test)] mod tests` blocks are left
out: the layering checked is that of the shipped code. `.ci/run` runs this on
every crate of the workspace.
"""
import os
import re
import sys

ITEM = re.compile(
    r"\b(?:struct|enum|fn|trait|type|const|static|union|macro_rules!)\s+([A-Za-z_][A-Za-z0-9_]*)"
)
USE = re.compile(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]*);")
PATH = re.compile(r"\b(?:crate|super|self|[a-z_][a-z0-9_]*)(?:::[A-Za-z_][A-Za-z0-9_]*)+")


def strip(text):
    """Source without comments, string and char literals, or test modules."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r(#+)"(?:.|\n)*?"\1', '""', text)
    text = re.sub(r'r"[^"]*"', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"'(?:\\.|[^'\\])'", "''", text)
    return re.sub(r"#\[cfg\(test\)\]\s*mod\s+tests\s*\{.*", "", text, flags=re.S)


def modules(src):
    """Module path (tuple) -> stripped source, for every file under src."""
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib"):
                rel = rel[:-1]
            if rel == ["main"] or (rel and rel[0] == "bin"):
                continue  # binaries are crates of their own
            with open(path, encoding="utf-8") as fh:
                mods[tuple(rel)] = strip(fh.read())
    return mods


def expand(tree):
    """`a::{b, c::{d, e}}` -> [`a::b`, `a::c::d`, `a::c::e`]."""
    i = tree.find("{")
    if i < 0:
        return [tree]
    prefix, depth, parts, cur = tree[:i], 0, [], ""
    for ch in tree[i + 1 : tree.rfind("}")]:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [prefix + x for p in parts if p.strip() for x in expand(p)]


def graph(src):
    mods = modules(src)
    defs = {m: set(ITEM.findall(t)) for m, t in mods.items()}
    children = {m: set(re.findall(r"\bmod\s+([a-z_][a-z0-9_]*)\s*;", t)) for m, t in mods.items()}
    uses = {
        m: [(p, bool(u.group(1))) for u in USE.finditer(t) for p in expand(re.sub(r"\s+", "", u.group(2)))]
        for m, t in mods.items()
    }
    aliases = {m: {} for m in mods}

    def absolute(m, segs):
        if not segs:
            return None
        if segs[0] == "crate":
            return segs[1:]
        if segs[0] == "super":
            base = list(m)
            while segs and segs[0] == "super":
                base, segs = base[:-1], segs[1:]
            return base + segs
        if segs[0] == "self":
            return list(m) + segs[1:]
        if segs[0] in children[m]:
            return list(m) + segs
        if segs[0] in aliases[m]:
            return aliases[m][segs[0]] + segs[1:]
        return None  # another crate, or a local name

    def split(path):
        segs = [s for s in path.split("::") if s]
        if segs and segs[-1] == "self":
            segs = segs[:-1]
        if segs and " as " in segs[-1]:
            segs[-1] = segs[-1].split(" as ")[0]
        return segs

    # Aliases may chain through other aliases: settle them in a few rounds.
    for _ in range(4):
        for m, paths in uses.items():
            for p, _ in paths:
                segs = split(p)
                if not segs or segs[-1] == "*":
                    continue
                a = absolute(m, segs)
                if a:
                    aliases[m][segs[-1]] = a

    def resolve(segs, depth=0):
        cur = ()
        for i, s in enumerate(segs):
            if cur + (s,) in mods:
                cur += (s,)
            elif s in defs.get(cur, ()) or depth > 10:
                return cur
            elif s in aliases.get(cur, {}):
                return resolve(aliases[cur][s] + segs[i + 1 :], depth + 1)
            else:
                return cur
        return cur

    edges = {m: set() for m in mods}
    for m, text in mods.items():
        code = USE.sub("", text)
        paths = [p for p, public in uses[m] if not public] + PATH.findall(code)
        for p in paths:
            a = absolute(m, split(p))
            if a is None:
                continue
            d = resolve(a)
            if d != m and d in mods:
                edges[m].add(d)
    return edges


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
            if len(comp) > 1:
                out.append(comp)

    for v in edges:
        if v not in index:
            visit(v)
    return out


def main():
    found = False
    for src in sys.argv[1:]:
        edges = graph(src)
        name = lambda m: "::".join(m) or "crate"
        for comp in cycles(edges):
            found = True
            print(f"{src}: import cycle between {', '.join(sorted(map(name, comp)))}")
            for v in comp:
                print(f"    {name(v)} -> {', '.join(sorted(name(w) for w in edges[v] if w in comp))}")
        if not found:
            print(f"{src}: {len(edges)} modules, no import cycle")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
