"""ruff stays clean on the library, the tests and the workflow scripts."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "workflow"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_is_clean():
    """The Snakemake workflow catalog requires snakefmt-formatted rules."""
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_files_are_replaced_only_by_the_atomic_module():
    """One atomic-write module (robustarch.atomic) for every file the package writes."""
    offenders = [f"{path.relative_to(REPO)}:{number}"
                 for path in sorted((REPO / "src" / "robustarch").rglob("*.py"))
                 if path.name != "atomic.py"
                 for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if "os.replace(" in line or "os.rename(" in line]
    assert not offenders, f"write through robustarch.atomic instead: {offenders}"


def test_functions_of_the_core_stages_are_short():
    """train/, evaluate/ and attacks/ read at a glance: no function over 60 lines of code (its
    docstring not counted)."""
    import ast

    long = []
    for room in ("train", "evaluate", "attacks"):
        for path in sorted((REPO / "src" / "robustarch" / room).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                lines = node.end_lineno - node.lineno + 1
                doc = node.body[0]
                if isinstance(doc, ast.Expr) and isinstance(getattr(doc, "value", None),
                                                            ast.Constant):
                    lines -= doc.end_lineno - doc.lineno + 1
                if lines > 60:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines})")
    assert not long, f"split these functions: {long}"
