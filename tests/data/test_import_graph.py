"""kerasft.data's modules import each other without a cycle (function-level
imports included): `_listing` is a leaf that `images` and `class_weights`
both use."""

import ast
import pathlib

DATA = pathlib.Path(__file__).resolve().parents[2] / "kerasft" / "data"


def _imports(path):
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "kerasft.data":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("kerasft.data."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("kerasft.data."):
                    found.add(alias.name.split(".")[2])
    return found


def test_no_import_cycle_in_kerasft_data():
    modules = {p.stem: p for p in DATA.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(path) & set(modules) for name, path in modules.items()}

    def visit(name, stack):
        assert name not in stack, " -> ".join([*stack, name])
        for child in sorted(graph[name]):
            visit(child, [*stack, name])

    for name in sorted(graph):
        visit(name, [])
    assert graph["_listing"] == set()
    assert "images" not in graph["class_weights"]
