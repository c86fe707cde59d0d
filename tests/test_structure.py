"""The package's shape stays what README's "Extending siamkit" promises: layers that import in one
direction only, no import cycles (counting imports inside functions and under TYPE_CHECKING),
and small files."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "siamkit"

# Lowest first. A module may import from a lower layer or from its own layer (package); never
# from a higher one. The package root (siamkit/__init__.py) is the facade above all of them.
LAYERS = [
    "_version",
    "errors",
    "registry",
    "precision",
    "schedules",
    "splits",
    "config",
    "runs",
    "losses",
    "models",
    "data",
    "methods",
    "train",
    "evaluate",
    "pipeline",
    "experiments",
    "results",
    "demo",
    "cli",
    "__main__",
]
RANK = {name: i for i, name in enumerate(LAYERS)}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Every siamkit module ``name`` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m == "siamkit" or m.startswith("siamkit.")}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "siamkit"


def test_every_module_belongs_to_a_layer():
    assert {_layer(m) for m in MODULES} - {"siamkit"} <= set(RANK)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "siamkit"))
def test_imports_go_down_the_layers(module):
    mine = _layer(module)
    upward = sorted(
        target
        for target in GRAPH[module]
        if _layer(target) != mine and (_layer(target) == "siamkit" or RANK[_layer(target)] > RANK[mine])
    )
    assert not upward, f"{module} ({mine}) imports from a higher layer: {upward}"


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in sorted(GRAPH.get(m, ())):
            if state.get(t) == 1:
                cycle = [*path[path.index(t) :], t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t in GRAPH and state.get(t) is None:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if state.get(m) is None:
            visit(m)


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path):
    """The walk itself: a function-level import counts, so does one under TYPE_CHECKING."""
    code = "def f():\n    from siamkit.cli import main\nif TYPE_CHECKING:\n    import siamkit.train.trainer\n"
    (tmp_path / "m.py").write_text(code)
    found = _imports("siamkit.models.m", tmp_path / "m.py")
    assert found == {"siamkit.cli", "siamkit.train.trainer"}


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_source_files_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= 300, f"{path.relative_to(SRC)} has {lines} lines; split it by what its parts do"
