#!/usr/bin/env python3
"""Fails when the top-level modules of src/ import each other in a cycle, or the files of one
folder module do (`super::x` and `crate::folder::x` between siblings, in folders at any depth),
or when a module uses one listed below it in the layout of src/lib.rs (which must name every
module: it is the map a new reader starts from).

The layers read one way (format <- probe <- monitor <- rules <- poller/export <- cmd): a module
may use what is below it, never what is above. Every `crate::NAME` path in a module's files
(`use` lines and inline paths, tests included, comments left out) is an edge from that module to
NAME. The strongly connected components of that graph with more than one module are cycles;
each is printed with the lines that make it. Run from the repository root; exit 1 on a cycle.
`--self-test` first checks that a cycle in a small made-up tree is found.
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

def module_of(src: Path, path: Path) -> str:
    rel = path.relative_to(src)
    return rel.parts[0].removesuffix(".rs")


def code_lines(text: str):
    """Lines without // comments (doc comments included); block comments are not used here."""
    for number, line in enumerate(text.splitlines(), 1):
        yield number, line.split("//", 1)[0]


def uses(line: str):
    """Top-level modules named by `crate::` paths on a line, `use crate::{a, b::c}` included."""
    found = set(re.findall(r"crate::(\w+)", line))
    for group in re.findall(r"crate::\{([^}]*)\}", line):
        found.update(re.findall(r"(?:^|,)\s*(\w+)", group))
    return found


def graph(root: Path):
    edges = defaultdict(lambda: defaultdict(list))
    modules = set()
    for path in sorted(root.rglob("*.rs")):
        src = module_of(root, path)
        if src in ("lib", "main"):
            continue
        modules.add(src)
        text = path.read_text()
        # A grouped `use crate::{...}` may span lines: join each one onto a single line.
        text = re.sub(r"crate::\{[^}]*\}", lambda m: m.group(0).replace("\n", " "), text)
        for number, line in code_lines(text):
            for dst in uses(line):
                if dst != src:
                    edges[src][dst].append(f"{path}:{number}")
    return modules, edges


def file_graph(folder: Path, root: Path = Path("src")):
    """The files of one folder module (`mod.rs` left out: it declares the others) and their
    imports of each other."""
    name = "::".join(folder.relative_to(root).parts)
    files = {p.stem for p in folder.glob("*.rs") if p.stem != "mod"}
    files |= {p.name for p in folder.iterdir() if p.is_dir()}
    edges = defaultdict(lambda: defaultdict(list))
    for path in sorted(folder.glob("*.rs")):
        src = path.stem
        if src == "mod":
            continue
        text = re.sub(r"(super|crate::\w+)::\{[^}]*\}", lambda m: m.group(0).replace("\n", " "), path.read_text())
        for number, line in code_lines(text):
            found = set(re.findall(r"\bsuper::(\w+)", line))
            found |= set(re.findall(rf"crate::{name}::(\w+)", line))
            for group in re.findall(rf"(?:\bsuper|crate::{name})::\{{([^}}]*)\}}", line):
                found.update(re.findall(r"(?:^|,)\s*(\w+)", group))
            for dst in found:
                if dst in files and dst != src:
                    edges[src][dst].append(f"{path}:{number}")
    return files, edges


def components(modules, edges):
    """Tarjan's strongly connected components."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in modules:
                continue
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
    for v in sorted(modules):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def layout(lib: str):
    """The modules in the order the `# Layout` list of lib.rs names them."""
    section = lib.split("# Layout", 1)[-1].split("\n//! # ", 1)[0]
    return re.findall(r"^//! - \[`(\w+)`\]", section, re.M)


def out_of_order(order, modules, edges):
    """Lines saying which module the layout leaves out, and which import points down it."""
    rank = {m: i for i, m in enumerate(order)}
    problems = [f"src/lib.rs's layout does not name module {m}" for m in sorted(modules) if m not in rank]
    for src in sorted(edges):
        for dst in sorted(edges[src]):
            if src in rank and dst in rank and rank[dst] > rank[src]:
                problems.append(f"{src} uses {dst}, listed below it in src/lib.rs's layout: {', '.join(edges[src][dst][:3])}")
    return problems


def self_test():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "a").mkdir()
        (root / "a" / "mod.rs").write_text("use crate::b::X; // crate::c in a comment\n")
        (root / "b.rs").write_text("use crate::{\n    a::Y,\n    c,\n};\n")
        (root / "c.rs").write_text("fn f() { crate::format::g() }\n")
        modules, edges = graph(root)
        found = components(modules, edges)
        assert found == [["a", "b"]], found
        assert "c" not in edges["a"], "comments are not imports"
        (root / "a" / "x.rs").write_text("use super::y::Y;\n")
        (root / "a" / "y.rs").write_text("fn f() { crate::a::x::g() }\n")
        (root / "a" / "z.rs").write_text("use super::{x, y};\n")
        files, edges = file_graph(root / "a", root)
        assert components(files, edges) == [["x", "y"]], components(files, edges)
        lib = "//! # Layout\n//! - [`c`]: c.\n//! - [`b`]: b.\n//!\n//! # Other\n//! - [`a`]: no.\n"
        assert layout(lib) == ["c", "b"], layout(lib)
        found = out_of_order(["b", "c"], {"b", "c", "d"}, {"c": {"b": ["x"]}, "b": {"c": ["y"]}})
        assert found == ["src/lib.rs's layout does not name module d", "b uses c, listed below it in src/lib.rs's layout: y"], found


def main():
    if "--self-test" in sys.argv:
        self_test()
    modules, edges = graph(Path("src"))
    cycles = components(modules, edges)
    folders = sorted(d for d in Path("src").rglob("*") if d.is_dir())
    inner = []
    for folder in folders:
        files, fedges = file_graph(folder)
        inner += [(folder, comp, fedges) for comp in components(files, fedges)]
    for folder, comp, fedges in inner:
        print(f"module_cycles: these files of {folder} import each other: {', '.join(comp)}")
        for src in comp:
            for dst in sorted(fedges[src]):
                if dst in comp:
                    print(f"  {src} -> {dst}: {', '.join(fedges[src][dst][:3])}")
    order = out_of_order(layout(Path("src/lib.rs").read_text()), modules, edges)
    for line in order:
        print(f"module_cycles: {line}")
    if not cycles and not inner and not order:
        print(f"module_cycles: no import cycle among {len(modules)} modules, nor among the files of {len(folders)} folders; each uses only those above it in src/lib.rs's layout")
        return 0
    if not cycles:
        return 1
    for comp in cycles:
        print(f"module_cycles: these modules import each other: {', '.join(comp)}")
        for src in comp:
            for dst in sorted(edges[src]):
                if dst in comp:
                    print(f"  {src} -> {dst}: {', '.join(edges[src][dst][:3])}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
