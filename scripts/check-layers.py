#!/usr/bin/env python3
"""The module graph of the extension (src/) and of the web dashboard (web/src/)
has no circles, and the extension's `runtime` layer imports no capability.

Reads every `.rs` file, collects the `crate::…` paths it names (`use crate::x`,
`use crate::{x, y::z}`, `crate::x::f(…)`; comments skipped), maps each file
and each path to its top-level module (the file or folder right under the
crate's src/) and reports every cycle between top-level modules. Exits 1 when
there is one (or a layer rule is broken), 0 otherwise with one line.

    scripts/check-layers.py [REPO_ROOT]      (default: this repository)

Plain Python 3, no dependencies. docs/ARCHITECTURE.md says why.
"""
import os
import re
import sys

# Crate source folders checked, relative to the repository root.
CRATES = ["src", "web/src"]
# Top-level modules that form the bottom layer of a crate: they may import
# only one another.
LOW = {"src": {"runtime"}}

# Imports that close a circle today and are to be turned around (issue 31
# leaves web/src/ for after the Tables split): each is taken out of the graph
# before cycles are looked for, so any other circle still fails. Remove an
# entry when its import is gone; never add one.
KNOWN = {
    "web/src": {
        ("error", "render"): "the error page is rendered by render",
        ("db", "api"): "the session transaction applies an impersonation through api::impersonation",
        ("replica", "db"): "the replica's pool is built by db::pool",
    },
}

PATH = re.compile(r"(?<![\w$])crate::")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def strip_comments(text):
    """Drop // comments (doc comments included) and /* */ blocks; string
    literals are kept as they are (a `crate::` in one would count)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"(^|[^:\"])//.*$", r"\1", line) for line in text.splitlines())


def group_heads(text, start):
    """The first segment of every item of the `{…}` group opening at `start`."""
    depth, item, heads = 0, "", []
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                heads.append(item)
                break
        if depth == 1 and ch == ",":
            heads.append(item)
            item = ""
        elif depth >= 1:
            item += ch
    out = []
    for h in heads:
        m = IDENT.match(h.strip())
        if m:
            out.append(m.group(0))
    return out


def imports(text):
    """Top-level module names this file's `crate::` paths start with."""
    text = strip_comments(text)
    names = set()
    for m in PATH.finditer(text):
        rest = text[m.end():]
        if rest.startswith("{"):
            names.update(group_heads(text, m.end()))
        else:
            ident = IDENT.match(rest)
            if ident:
                names.add(ident.group(0))
    return names


def graph(src):
    """{module: {modules it imports}} over the top-level modules of `src`."""
    tops = set()
    for entry in os.listdir(src):
        full = os.path.join(src, entry)
        if os.path.isdir(full):
            tops.add(entry)
        elif entry.endswith(".rs") and entry not in ("lib.rs", "main.rs"):
            tops.add(entry[:-3])
    edges = {t: set() for t in tops}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src).split(os.sep)
            owner = rel[0][:-3] if len(rel) == 1 else rel[0]
            if owner not in tops:  # lib.rs / main.rs: the crate root wires everything
                continue
            with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                for name in imports(fh.read()):
                    if name in tops and name != owner:
                        edges[owner].add(name)
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def one_loop(edges, comp):
    """A readable loop a -> b -> ... -> a inside the component `comp`."""
    start = comp[0]
    parent, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v]):
            if w == start:
                loop = []
                while v is not None:
                    loop.insert(0, v)
                    v = parent[v]
                return " -> ".join(loop + [start])
            if w in comp and w not in parent:
                parent[w] = v
                queue.append(w)
    return ", ".join(comp)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    failed, summary = False, []
    for crate in CRATES:
        src = os.path.join(root, crate)
        if not os.path.isdir(src):
            continue
        edges = graph(src)
        known = KNOWN.get(crate, {})
        for a, b in known:
            edges.get(a, set()).discard(b)
        for comp in cycles(edges):
            failed = True
            print(f"check-layers: {crate}: import circle between {', '.join(comp)}: {one_loop(edges, comp)}")
        for low in sorted(LOW.get(crate, ())):
            if low not in edges:
                continue
            # (what the low layer's own modules reach, one hop)
            above = sorted(edges[low] - LOW[crate])
            if above:
                failed = True
                print(f"check-layers: {crate}: the {low} layer imports {', '.join(above)} (it may import only {', '.join(sorted(LOW[crate]))})")
        note = f", {len(known)} known back edges set aside" if known else ""
        summary.append(f"{crate}: {len(edges)} modules, {sum(len(v) for v in edges.values())} imports{note}")
    if failed:
        return 1
    print("check-layers: no import circles (" + "; ".join(summary) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
