"""The conda environments of the rules (envs/*.yaml): they parse, pin every package exactly,
and agree with the package's pins (pyproject.toml) and the lock (constraints.txt).

Creating the environments needs conda and conda-forge, so these tests check the files only.
"""

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
# conda's exact pin: name=version or name==version (no wildcard), optionally =build.
CONDA_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==?([0-9][A-Za-z0-9_.+!-]*)(=[A-Za-z0-9_.]+)?$")


def _pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _exact(requirement: Requirement) -> str | None:
    """The version of an `==` pin, None for anything else."""
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
        return specs[0].version
    return None


def _package_pins() -> dict[str, str]:
    deps = [Requirement(r) for r in _pyproject()["project"]["dependencies"]]
    return {canonicalize_name(r.name): _exact(r) for r in deps}


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = _exact(requirement)
    return pins


def _env(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(conda packages, pip packages) of an environment file, name -> pinned version."""
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and env.get("dependencies"), f"{path.name}: no dependencies"
    assert env.get("channels"), f"{path.name}: no channels (would depend on the user's .condarc)"
    conda, pip = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"{path.name}: unexpected section {dep}"
            for line in dep["pip"]:
                requirement = Requirement(line)
                version = _exact(requirement)
                assert version, f"{path.name}: pip package {line!r} is not pinned with =="
                name = canonicalize_name(requirement.name)
                assert name not in pip, f"{path.name}: {name} listed twice"
                pip[name] = version
        else:
            match = CONDA_PIN.match(str(dep))
            assert match, f"{path.name}: conda package {dep!r} is not pinned as name=version"
            conda[match.group(1).lower()] = match.group(2)
    return conda, pip


def test_there_are_environment_files():
    assert ENV_FILES, "envs/ has no environment files"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_environment_pins_every_package(path):
    conda, pip = _env(path)
    assert "python" in conda, f"{path.name}: pin the Python version"
    if pip:
        assert "pip" in conda, f"{path.name}: a pip section needs conda's pip, pinned"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_python_version_is_one_the_package_supports(path):
    conda, _ = _env(path)
    supported = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert Version(conda["python"]) in supported
    # constraints.txt is resolved for Python 3.11 (its header says so).
    assert Version(conda["python"]).release[:2] == (3, 11)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_environment_agrees_with_package_pins_and_lock(path):
    _, pip = _env(path)
    package, lock = _package_pins(), _lock()
    for name, version in pip.items():
        if name in package:
            assert version == package[name], (
                f"{path.name}: {name}=={version}, pyproject.toml pins {package[name]}")
        if name in lock:
            assert version == lock[name], (
                f"{path.name}: {name}=={version}, constraints.txt locks {lock[name]}")
        assert name in package or name in lock, (
            f"{path.name}: {name} is neither a dependency in pyproject.toml nor in constraints.txt")


def test_rule_environment_has_every_runtime_dependency():
    """Every job runs in envs/robustarch.yaml, so it must carry all of the package's
    runtime dependencies (the dev extras are not needed by jobs)."""
    _, pip = _env(REPO / "envs" / "robustarch.yaml")
    missing = sorted(set(_package_pins()) - set(pip))
    assert not missing, f"envs/robustarch.yaml lacks {missing} (pyproject.toml dependencies)"


def test_package_pins_are_exact_and_locked():
    """The premise of the checks above: pyproject.toml pins exactly, as the lock does."""
    package, lock = _package_pins(), _lock()
    assert all(package.values()), [n for n, v in package.items() if not v]
    for name, version in package.items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"


def test_every_rule_uses_an_existing_environment():
    rules = "\n".join(p.read_text() for p in sorted((REPO / "rules").glob("*.smk")))
    used = set(re.findall(r'conda:\s*\n\s*"\.\./(envs/[^"]+)"', rules))
    assert used, "no rule declares a conda environment"
    for env in used:
        assert (REPO / env).is_file(), f"a rule uses {env}, which does not exist"
