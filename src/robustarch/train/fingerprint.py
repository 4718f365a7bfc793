"""What decides a training run's result, recorded in its checkpoints (the resume guard).

A rerun resumes a checkpoint only when it was written under the same **settings** (every field
of :class:`~robustarch.settings.TrainingSettings`: recipe, adversary, precision and layout
switches, seed), the same **data** (a SHA-256 of the train and test split files' contents,
computed once per job) and the same **code** (a SHA-256 of the sources of the training path:
``robustarch/train/``, the loader and augmentations, the PGD/TRADES attacks and projections, the
model registry and helpers the loop uses, the architecture's family module with the shared block
modules it imports, plus the torch version). Otherwise the checkpoints are set aside and training
starts over (:func:`robustarch.train.loop.train_model`).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..settings import TrainingSettings, as_dict

PARTS = ("settings", "data", "code")

# The modules a training run executes (besides the architecture's own, added per arch).
_TRAINING_PATH = (
    "robustarch.train.checkpoints", "robustarch.train.fingerprint", "robustarch.train.job",
    "robustarch.train.loop", "robustarch.train.objectives", "robustarch.train.outputs",
    "robustarch.train.schedule", "robustarch.data.loader", "robustarch.data.augment",
    "robustarch.attacks.pgd", "robustarch.attacks.trades", "robustarch.attacks.projections",
    "robustarch.models.registry", "robustarch.models.batchnorm_folding",
    "robustarch.models.memory_format", "robustarch.models.weights", "robustarch.runtime",
)


@dataclass(frozen=True)
class Fingerprint:
    """``settings``: the settings as plain values; ``data``/``code``: hex digests (``data`` None
    when the caller did not hash the split files: then it is not compared)."""

    settings: dict[str, Any]
    data: str | None
    code: str

    def as_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "data": self.data, "code": self.code}

    def digests(self) -> dict[str, str | None]:
        """Compact form for ``model.pt``: the settings as a digest too."""
        return {"settings": _digest_json(self.settings), "data": self.data, "code": self.code}

    def changes(self, recorded: Mapping[str, Any] | None) -> dict[str, list[str]]:
        """What differs from a checkpoint's ``recorded`` fingerprint: part -> details (the
        settings fields that changed). Empty when the checkpoint may be resumed; a checkpoint
        without a fingerprint (an older version wrote it) counts as other code."""
        if not recorded:
            return {"code": ["checkpoint has no fingerprint"]}
        changed: dict[str, list[str]] = {}
        fields = _changed_fields(recorded.get("settings") or {}, self.settings)
        if fields:
            changed["settings"] = fields
        if self.data is not None and recorded.get("data") != self.data:
            changed["data"] = []
        if recorded.get("code") != self.code:
            changed["code"] = []
        return changed


def _digest_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = ""
                    ) -> list[str]:
    """``field: old -> new`` for every differing (nested) field."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _changed_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def data_digest(*paths: str | Path) -> str:
    """SHA-256 over the contents of the split files (in order)."""
    total = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            total.update(hashlib.file_digest(fh, "sha256").digest())
    return total.hexdigest()


def _module_file(name: str) -> Path:
    module = importlib.import_module(name)
    return Path(module.__file__)


def _imports(path: Path) -> tuple[list[Path], set[str]]:
    """The sibling modules ``path`` imports (``from ._blocks import ...``) and the top-level
    names of its absolute imports."""
    siblings, packages = [], set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            siblings += [p for n in names if (p := path.with_name(f"{n}.py")).exists()]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            packages.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            packages.update(a.name.split(".")[0] for a in node.names)
    return siblings, packages


def _family_sources(arch: str) -> tuple[list[Path], list[str]]:
    """The architecture's family module with the sibling modules it imports, transitively (the
    shared blocks), and the versions of the third-party packages they import (timm,
    vit-pytorch), which build parts of some models."""
    import importlib.metadata as metadata
    import sys

    from ..models import model_info

    builder = model_info(arch).builder
    builder = getattr(builder, "func", builder)  # variants register functools.partial builders
    todo, files, packages = [_module_file(builder.__module__)], [], set()
    while todo:
        path = todo.pop()
        if path in files:
            continue
        files.append(path)
        siblings, imported = _imports(path)
        todo += siblings
        packages |= imported
    versions = []
    for name in sorted(packages - set(sys.stdlib_module_names) - {"robustarch"}):
        try:  # the distribution is named as the import (timm, torch, vit_pytorch ~ vit-pytorch)
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (no distribution found)")
    return files, versions


def code_digest(arch: str) -> str:
    """SHA-256 of the training path's sources for ``arch``, the torch version and the versions
    of the packages its family module imports."""
    import torch

    family, versions = _family_sources(arch)
    files = [_module_file(name) for name in _TRAINING_PATH] + family
    total = hashlib.sha256("\n".join([f"torch {torch.__version__}", *versions, ""]).encode())
    for path in sorted(set(files)):
        total.update(f"{path.parent.name}/{path.name}\n".encode())
        total.update(hashlib.sha256(path.read_bytes()).digest())
    return total.hexdigest()


def run_fingerprint(settings: TrainingSettings, data: str | None = None) -> Fingerprint:
    """The fingerprint of a run with ``settings`` (and the split files' ``data`` digest)."""
    return Fingerprint(settings=as_dict(settings), data=data, code=code_digest(settings.arch))


def describe(changes: Mapping[str, list[str]]) -> str:
    """``settings (lr: 0.01 -> 0.02), code`` for the log line."""
    return ", ".join(f"{part} ({'; '.join(details)})" if details else part
                     for part, details in changes.items())
