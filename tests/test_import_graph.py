"""The import graph between the subpackages of ``src/interests`` has no cycle.

Run ``python tests/test_import_graph.py`` to print the graph: each edge with how many
module-level and function-level imports make it (imports under ``if TYPE_CHECKING:``
are left out: they never run). The test fails on a cycle among the runtime edges
(module-level and function-level together), naming it.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "interests"
PACKAGE = "interests"

#: (importer, imported) -> {"module": n, "function": n}
Graph = dict[tuple[str, str], dict[str, int]]


def _module_name(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _node(module: list[str]) -> str:
    """The subpackage (``interests.profile``) or top-level module (``interests.pipeline``) of a module."""
    return ".".join(module[:2])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: list[str], is_package: bool) -> list[tuple[list[str], str]]:
    """Every import of ``interests`` modules in ``tree``: (target module, "module" or "function")."""
    out: list[tuple[list[str], str]] = []

    def visit(node: ast.AST, level: str) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, level)
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            level = "function"
        if isinstance(node, ast.Import):
            out.extend((a.name.split("."), level) for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module if is_package else module[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            else:
                target = (node.module or "").split(".")
            if target[0] == PACKAGE:
                if node.module is None or len(target) == 1:  # from . import x: x may be a submodule
                    out.extend(([*target, a.name], level) for a in node.names)
                else:
                    out.append((target, level))
        for child in ast.iter_child_nodes(node):
            visit(child, level)

    visit(tree, "module")
    return out


def import_graph(root: Path = ROOT) -> Graph:
    """Edges between the nodes (subpackages and top-level modules) of ``interests``."""
    graph: Graph = defaultdict(lambda: {"module": 0, "function": 0})
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        src = _node(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for target, level in _imports(tree, module, path.name == "__init__.py"):
            dst = _node(target)
            if len(target) < 2 or dst == src or target[1] not in _top_names(root):
                continue
            graph[(src, dst)][level] += 1
    return dict(graph)


def _top_names(root: Path) -> set[str]:
    return {p.stem for p in root.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in root.iterdir() if (p / "__init__.py").is_file()
    }


def find_cycle(edges: set[tuple[str, str]]) -> list[str] | None:
    """One cycle of the directed graph ``edges`` (its nodes, the first repeated at the end), or None."""
    succ: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(edges):
        succ[a].append(b)
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def dfs(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in succ[n]:
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state and (found := dfs(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(succ):
        if n not in state and (found := dfs(n)):
            return found
    return None


def runtime_edges(graph: Graph) -> set[tuple[str, str]]:
    return {e for e, n in graph.items() if n["module"] or n["function"]}


def test_find_cycle_finds_one() -> None:
    assert find_cycle({("a", "b"), ("b", "c"), ("c", "a")}) == ["a", "b", "c", "a"]
    assert find_cycle({("a", "b"), ("b", "c"), ("a", "c")}) is None


def test_graph_sees_function_level_and_skips_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "interests"
    for sub in ("a", "b"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..b import y\n"
        "def f():\n    from interests.b.y import z\n"
    )
    (pkg / "b" / "y.py").write_text("from ..a import x\n")
    graph = import_graph(pkg)
    assert graph[("interests.a", "interests.b")] == {"module": 0, "function": 1}
    assert graph[("interests.b", "interests.a")] == {"module": 1, "function": 0}
    assert find_cycle(runtime_edges(graph)) == ["interests.a", "interests.b", "interests.a"]


def test_no_runtime_import_cycle_between_packages() -> None:
    graph = import_graph()
    assert ("interests.scale", "interests.profile") in graph  # the walk sees the package
    cycle = find_cycle(runtime_edges(graph))
    assert cycle is None, "runtime import cycle: " + " -> ".join(cycle or [])


def main() -> int:
    graph = import_graph()
    for (a, b), n in sorted(graph.items()):
        kind = "TYPE_CHECKING only" if not (n["module"] or n["function"]) else ""
        print(f"{a} -> {b}: {n['module']} module-level, {n['function']} function-level {kind}".rstrip())
    cycle = find_cycle(runtime_edges(graph))
    if cycle:
        print("cycle: " + " -> ".join(cycle))
        return 1
    print("no runtime import cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
