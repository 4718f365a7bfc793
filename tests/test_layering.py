"""The package is laid out in data-flow order, and its imports point only downstream.

Rooms: the foundations (errors, atomic writes, runtime, typed settings) import only each other;
the stages data → models → attacks → train → evaluate → analysis → report import themselves,
earlier stages and the foundations; the glue (config validation, workflow helpers, benchmarks)
may import anything, and nothing imports it. Every import is checked, also those inside
functions, which is where the lazy ones live.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "robustarch"
FOUNDATIONS = ("errors", "atomic", "runtime", "settings")
STAGES = ("data", "models", "attacks", "train", "evaluate", "analysis", "report")
GLUE = ("config", "workflow", "bench")


def _module_name(path: Path) -> str:
    parts = ["robustarch", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every robustarch import in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import x` names a module x of the package, or a name in it
            names = [f"{target}.{a.name}" for a in node.names] if not node.module else [target]
            found += [(node.lineno, t) for t in names]
    return [(line, t) for line, t in found if t == "robustarch" or t.startswith("robustarch.")]


def room(module: str) -> str:
    """The room of a module: a foundation, a stage or the glue (``robustarch`` itself: the
    package's ``__init__``, a foundation)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__version__":  # the package's own __init__
        return "foundation"
    top = parts[1]
    if top in FOUNDATIONS:
        return "foundation"
    if top in STAGES or top in GLUE:
        return top
    raise AssertionError(f"{module}: not in any room; add it to tests/test_layering.py's map")


def allowed(importer: str, imported: str) -> bool:
    source, target = room(importer), room(imported)
    if target == "foundation" or source in GLUE:
        return True
    if source == "foundation" or target in GLUE:
        return False
    return STAGES.index(target) <= STAGES.index(source)


def test_every_module_is_in_a_room():
    for path in PACKAGE.rglob("*.py"):
        room(_module_name(path))


def test_imports_point_only_downstream():
    wrong = [f"{path.relative_to(PACKAGE.parent)}:{line}: {_module_name(path)} imports {target} "
             f"({room(_module_name(path))} -> {room(target)})"
             for path in sorted(PACKAGE.rglob("*.py"))
             for line, target in _imports(path)
             if not allowed(_module_name(path), target)]
    assert not wrong, "imports against the data flow:\n" + "\n".join(wrong)


@pytest.mark.parametrize("importer, imported, ok", [
    ("robustarch.report.table1", "robustarch.evaluate.merge", True),
    ("robustarch.evaluate.attack", "robustarch.report.names", False),
    ("robustarch.train.loop", "robustarch.attacks.pgd", True),
    ("robustarch.attacks.pgd", "robustarch.train.loop", False),
    ("robustarch.settings", "robustarch.models", False),
    ("robustarch.models.catalog", "robustarch.atomic", True),
    ("robustarch.data.splits", "robustarch.config", False),
    ("robustarch.bench.runner", "robustarch.report.figures", True),
])
def test_the_rule_itself(importer, imported, ok):
    assert allowed(importer, imported) is ok


def test_relative_imports_are_resolved(tmp_path, monkeypatch):
    package = tmp_path / "robustarch"
    (package / "train").mkdir(parents=True)
    source = package / "train" / "loop.py"
    source.write_text("from ..attacks import pgd\nfrom . import objectives\n"
                      "def f():\n    from ..report.names import display_name\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", package)
    assert [t for _, t in _imports(source)] == [
        "robustarch.attacks", "robustarch.train.objectives", "robustarch.report.names"]
