"""The project's import graph: no cycle, and the package layering of DESIGN.md / STYLE.md.

Read from the source with ``ast``, so it sees the imports inside functions too (an import
moved into a function to dodge a cycle at start-up is still a cycle of the design).
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "broker", "cli", "datastore", "diagnosis", "keras_bridge", "migrations", "models", "sweeps",
            "worker")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


MODULES = _modules()


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every module ``module`` imports, anywhere in the file (module level and inside functions)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"  # "from worker import job_store" imports a module
                yield submodule if submodule in MODULES else base


def _graph() -> dict[str, set[str]]:
    """Edges between the project's own modules."""
    return {module: {target for target in _imported(module, path) if target in MODULES and target != module}
            for module, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a cycle or a knot of them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_the_reader_sees_the_imports_it_must_judge():
    graph = _graph()
    assert "worker.data" in graph["worker.pipeline"]  # module level
    assert "worker.image_decode" in graph["worker.sources"]  # inside a function
    assert "worker.job_store" in graph["worker.training"]  # "from worker import job_store"
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_project_has_no_import_cycle():
    assert _cycles(_graph()) == []


@pytest.mark.parametrize("package", ["models", "datastore"])
def test_the_data_model_and_the_datastore_import_no_other_project_package(package):
    outside = {f"{module} -> {target}" for module, path in MODULES.items() if module.split(".")[0] == package
               for target in _imported(module, path)
               if target.split(".")[0] in PACKAGES and target.split(".")[0] != package}
    assert outside == set()


def test_the_api_reaches_neither_the_worker_nor_tensorflow_nor_keras():
    """Transitively: what the API imports, and what those modules import, in the API process."""
    graph = _graph()
    api = {m for m in MODULES if m.split(".")[0] == "api"}
    reached = set().union(*(_reachable(graph, m) for m in api))
    assert {m for m in reached if m.split(".")[0] in ("worker", "keras_bridge")} == set()
    heavy = {f"{m} -> {t}" for m in reached for t in _imported(m, MODULES[m])
             if t.split(".")[0] in ("tensorflow", "keras")}
    assert heavy == set()
