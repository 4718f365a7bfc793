"""The registered architectures' names and metadata, read without importing torch.

Planning the workflow (``snakemake -n``) needs each architecture's name, category, family and
paper parameter count, not the models. Importing the model modules means importing torch,
seconds of every plan; so the registry's metadata is also kept in ``models/catalog.json``,
written from the live registry by ``python -m robustarch.models.catalog``. The file records a
hash of the model sources it was written from, and is trusted only while they are unchanged:
after an architecture is added or edited, this module imports the registry instead (slower,
never stale) until the file is written again. A test keeps the committed file current.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ..atomic import write_text
from ..errors import UnknownModelError, unknown_model

MODELS_DIR = Path(__file__).resolve().parent
CATALOG_PATH = MODELS_DIR / "catalog.json"

__all__ = ["CATALOG_PATH", "ModelEntry", "UnknownModelError", "list_models", "model_info",
           "read_catalog", "registry_entries", "source_hash", "write_catalog"]


@dataclass(frozen=True)
class ModelEntry:
    """What planning needs of a registered architecture (see ``registry.ModelInfo``)."""

    name: str
    category: str
    family: str
    paper_params_m: float | None


def model_sources(models_dir: Path = MODELS_DIR) -> list[Path]:
    """The sources the registry's contents come from: the registry and every family module."""
    return [models_dir / "registry.py", *sorted((models_dir / "families").glob("*.py"))]


def source_hash(models_dir: Path = MODELS_DIR) -> str:
    """sha256 over the registry's sources (paths relative to ``models_dir`` and bytes)."""
    digest = hashlib.sha256()
    for path in model_sources(models_dir):
        name = path.relative_to(models_dir).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def registry_entries() -> dict[str, ModelEntry]:
    """The live registry's entries (imports every model module, and torch)."""
    from . import registry

    return {name: ModelEntry(name, info.category, info.family, info.paper_params_m)
            for name in registry.list_models() for info in [registry.model_info(name)]}


def write_catalog(path: Path = CATALOG_PATH) -> dict[str, ModelEntry]:
    """Write the live registry's entries and the sources' hash to ``path`` (atomically)."""
    entries = registry_entries()
    rows = ",\n".join(f"  {json.dumps(asdict(e))}" for e in entries.values())
    text = f'{{"source_sha256": "{source_hash(path.parent)}",\n "models": [\n{rows}\n]}}\n'
    write_text(text, path)
    return entries


def read_catalog(path: Path = CATALOG_PATH) -> dict[str, ModelEntry] | None:
    """The entries of ``path`` if it matches the current model sources, else None."""
    try:
        data = json.loads(path.read_text())
        if data["source_sha256"] != source_hash(path.parent):
            return None
        return {m["name"]: ModelEntry(**m) for m in data["models"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or unreadable: the registry answers


@functools.cache
def _entries() -> dict[str, ModelEntry]:
    return read_catalog() or registry_entries()


def list_models(category: str | None = None) -> list[str]:
    """All registered names (sorted), optionally only those of one category."""
    return sorted(n for n, e in _entries().items() if category is None or e.category == category)


def model_info(name: str) -> ModelEntry:
    """The entry of architecture ``name``; :class:`UnknownModelError` names the valid ones."""
    try:
        return _entries()[name]
    except KeyError:
        raise unknown_model(name, list_models()) from None


if __name__ == "__main__":
    written = write_catalog()
    print(f"wrote {CATALOG_PATH} ({len(written)} architectures)", file=sys.stderr)
