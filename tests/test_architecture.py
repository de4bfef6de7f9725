"""The package's layers import downward only, and nothing imports in a cycle.

Every `import` in `pnf/` counts, at module level or inside a function. A module may
import its own layer or a lower one; within a layer the imports must not form a cycle.
A module's layer is that of the longest prefix listed in `LAYERS` (`pnf` itself is only
the package's `__init__`); the README draws them.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pnf"

LAYERS = [
    ("base", ["pnf", "pnf.checks", "pnf.files", "pnf.profiles", "pnf.paper", "pnf.device", "pnf.metrics", "pnf.checkpoint"]),
    ("data", ["pnf.data"]),
    ("fields", ["pnf.fields"]),
    ("optim", ["pnf.optim"]),
    ("config", ["pnf.config"]),
    ("tasks", ["pnf.tasks"]),
    ("train", ["pnf.train"]),
    ("runs", ["pnf.runs"]),
    ("studies", ["pnf.studies", "pnf.fit", "pnf.estimate", "pnf.profile_table"]),
    ("report", ["pnf.report"]),
    ("cli", ["pnf.__main__", "pnf.render"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """Index in LAYERS of the longest listed prefix of `module`."""
    best, depth = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (prefix != "pnf" and module.startswith(prefix + "."))
            if covers and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def imports(path: Path, modules: set[str]) -> set[str]:
    """The pnf modules `path` imports anywhere in its body (packages' own children excluded)."""
    name = module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(paths)) for name, path in paths.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def test_every_module_is_in_a_layer():
    for module in graph():
        layer_of(module)


def test_imports_point_down_only():
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
              for a, targets in graph().items() for b in sorted(targets) if layer_of(b) > layer_of(a)]
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert layer_of("pnf.tasks.image") > layer_of("pnf.fields") > layer_of("pnf.data.images")
