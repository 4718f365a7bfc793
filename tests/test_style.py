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
