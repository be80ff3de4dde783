"""List imports between project modules and fail on an import cycle.

Run it:
    .venv/bin/python tools/import_cycles.py              # flows/ rag/ models/ reports/
    .venv/bin/python tools/import_cycles.py flows rag -v # chosen packages; -v prints every edge

Both module-level and function-level (late) imports count: a late import only postpones a cycle
to the first call, it does not remove it. An import guarded by `if TYPE_CHECKING:` never runs and
is left out, and so is a submodule's import of its own package (rag/sources/filings.py importing
rag.sources): Python initialises a package before any of its submodules, so that edge is the
registration pattern of DESIGN.md (a package importing its plugins at its bottom), not a cycle
between peers. Exit 1 when a cycle is found (each printed as a -> b -> ... -> a), 0 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PACKAGES = ("flows", "rag", "models", "reports")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST):
    """(node, late) for every import statement; late = inside a function."""

    def visit(node: ast.AST, late: bool):
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, late
            yield from visit(child, late or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    yield from visit(tree, False)


def edges(packages: tuple[str, ...]) -> dict[tuple[str, str], str]:
    """(importer, imported) -> "module" | "function" (module-level wins when both occur)."""
    files = {module_name(p): p for pkg in packages for p in sorted((ROOT / pkg).rglob("*.py"))}
    found: dict[tuple[str, str], str] = {}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node, late in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the importer's package, `level` steps up
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join([*pkg, base] if base else pkg)
                # `from pkg import mod` imports the module pkg.mod when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                while target and target not in files:  # `import a.b.c` of a non-module attribute
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    kind = "function" if late else "module"
                    if found.get((name, target)) != "module":
                        found[(name, target)] = kind
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def example_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle inside a component: a shortest path back to its first module."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    return component


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("packages", nargs="*", default=list(DEFAULT_PACKAGES))
    ap.add_argument("-v", "--verbose", action="store_true", help="print every edge")
    args = ap.parse_args(argv)
    found = edges(tuple(args.packages))
    graph: dict[str, set[str]] = {}
    for (src, dst), _ in found.items():
        graph.setdefault(src, set()).add(dst)
        graph.setdefault(dst, set())
    if args.verbose:
        for (src, dst), kind in sorted(found.items()):
            print(f"{src} -> {dst}" + ("  (in a function)" if kind == "function" else ""))
    late = sum(kind == "function" for kind in found.values())
    print(f"{len(graph)} modules, {len(found)} imports between them ({late} inside functions)")
    components = cycles(graph)
    for component in components:
        path = example_cycle(graph, component)
        hops = "".join(
            f"{a} {'-(in a function)->' if found[(a, b)] == 'function' else '->'} "
            for a, b in zip(path, path[1:], strict=False)
        )
        print(f"cycle among {len(component)} modules: {', '.join(component)}")
        print(f"  e.g. {hops}{path[-1]}")
    if not components:
        print("no import cycle")
    return 1 if components else 0


if __name__ == "__main__":
    sys.exit(main())
