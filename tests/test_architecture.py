"""The code's shape (docs/architecture.md): imports point down the layers and never form a
cycle (function-local imports included), and no function is longer than about a screen."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "engine" / "stylefill"
MAX_LINES = 60

# Lower layers never import higher ones (docs/architecture.md).
LAYERS = {
    0: {"__init__", "errors", "paths", "atomic", "config", "folders", "progress", "classes",
        "images", "regions", "sample_photos", "photo_sets", "photo_stats", "looks",
        "openmp"},
    1: {"backbones", "optvis.objectives", "optvis.param", "optvis.transforms",
        "optvis.regularizers", "optvis.patch_prior", "optvis.solver", "optvis", "patchdb",
        "patchdb_index", "masks", "classification", "judge"},
    2: {"optvis.recipes", "completion", "styles", "style_learning", "sheets", "retrieval",
        "evaluation", "naturalness"},
    3: {"operations", "cluster"},
    4: {"api", "cli", "server", "jobs", "__main__", "cluster.serve"},
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _imports(path: Path) -> set[str]:
    """Every stylefill module `path` imports, anywhere in the file (relative or absolute)."""
    me = _module(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
            elif node.module and node.module.startswith("stylefill"):
                base = []
                node_module = node.module.split(".")[1:]
                found |= {".".join(node_module + [a.name]) for a in node.names} | {".".join(node_module)}
                continue
            else:
                continue
            mod = base + (node.module.split(".") if node.module else [])
            found |= {".".join(mod + [a.name]) for a in node.names} | {".".join(mod)}
        elif isinstance(node, ast.Import):
            found |= {a.name[len("stylefill."):] for a in node.names if a.name.startswith("stylefill.")}
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in files and m != name} for name, path in files.items()}


def _layer(module: str) -> int:
    """A module's own layer, else its package's (cluster.serve is a surface, cluster is not)."""
    for level, names in LAYERS.items():
        if module in names:
            return level
    for level, names in LAYERS.items():
        if module.split(".")[0] in names - {"optvis"}:
            return level
    raise AssertionError(f"{module} is in no layer of docs/architecture.md: add it there and here")


def test_every_module_has_a_layer_and_imports_point_down():
    upward = [f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
              for a, deps in _graph().items() for b in deps if _layer(b) > _layer(a)]
    assert not upward, upward


# The judge network only evaluates: no objective, recipe or training may see it.
JUDGE_USERS = {"evaluation", "naturalness", "operations.evaluation"}


def test_only_evaluation_uses_the_judge():
    users = {a for a, deps in _graph().items() if "judge" in deps}
    assert users <= JUDGE_USERS, users - JUDGE_USERS


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


@pytest.mark.parametrize("folder", ["engine", "gimp_plugin", "install", "tests"])
def test_functions_fit_on_a_screen(folder):
    long = []
    for path in sorted((REPO / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long
