"""Dependencies point one way: no import cycles among kerasinit's modules (lazy imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "kerasinit"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the kerasinit modules it imports anywhere in its body (functions too)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for target in targets:
                if target.split(".")[0] != "kerasinit":
                    continue
                while target not in modules and "." in target:  # `from pkg import name` -> pkg
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name and not name.startswith(target + "."):
                    edges.add(target)  # a module importing its own parent package is its package's business
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles():
    cycle = find_cycle({k: {t for t in v if not k.startswith(t)} for k, v in import_graph().items()})
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


#: The only modules that may import a backend framework or tf_keras (each imported lazily, on its own backend).
FRAMEWORK_MODULES = {"kerasinit.backend.tensorflow", "kerasinit.backend.jax", "kerasinit.backend.torch",
                     "kerasinit.compat.tf_keras", "kerasinit.monitor.tensorboard", "kerasinit.pruning.tfmot",
                     "kerasinit.backend.tflite"}
FRAMEWORKS = {"tensorflow", "jax", "jaxlib", "torch", "tf_keras", "tensorflow_model_optimization"}


def framework_imports() -> dict[str, set[str]]:
    """module -> the frameworks it imports anywhere in its body."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        if names & FRAMEWORKS:
            found[_module_name(path)] = names & FRAMEWORKS
    return found


def test_only_the_backend_modules_import_a_framework():
    found = framework_imports()
    assert set(found) <= FRAMEWORK_MODULES, {m: f for m, f in found.items() if m not in FRAMEWORK_MODULES}
    assert found["kerasinit.backend.torch"] == {"torch"} and found["kerasinit.backend.jax"] == {"jax"}
