"""The torch-free catalog of registered architectures that planning reads."""

import shutil
import subprocess
import sys

import pytest

from robustarch.models import catalog as model_catalog
from robustarch.models import list_models, model_info
from robustarch.models.catalog import (
    CATALOG_PATH,
    UnknownModelError,
    read_catalog,
    registry_entries,
    source_hash,
)


def test_committed_catalog_is_current():
    """models/catalog.json matches the model sources and the live registry entry by entry;
    if this fails, run `python -m robustarch.models.catalog` and commit the file."""
    entries = read_catalog()
    assert entries is not None, "models/catalog.json is stale: python -m robustarch.models.catalog"
    assert entries == registry_entries()
    assert sorted(entries) == list_models()
    for name, entry in entries.items():
        info = model_info(name)
        assert (entry.category, entry.family, entry.paper_params_m) == (
            info.category, info.family, info.paper_params_m)


def test_catalog_of_changed_sources_is_not_trusted(tmp_path):
    """An architecture added or edited since the file was written: the file no longer
    answers (the registry does, see _entries), so planning is never stale."""
    models = tmp_path / "models"
    shutil.copytree(CATALOG_PATH.parent, models, ignore=shutil.ignore_patterns("__pycache__"))
    assert read_catalog(models / "catalog.json") is not None
    (models / "families" / "newarch.py").write_text("# a new family module\n")
    assert source_hash(models) != source_hash()
    assert read_catalog(models / "catalog.json") is None
    (models / "catalog.json").write_text("{not json")
    assert read_catalog(models / "catalog.json") is None


def test_written_catalog_round_trips(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(CATALOG_PATH.parent, models, ignore=shutil.ignore_patterns("__pycache__"))
    (models / "catalog.json").unlink()
    written = model_catalog.write_catalog(models / "catalog.json")
    assert read_catalog(models / "catalog.json") == written == registry_entries()


def test_unknown_architecture_names_the_valid_ones():
    with pytest.raises(UnknownModelError, match=r"unknown architecture 'resnet9000'.*resnet"):
        model_catalog.model_info("resnet9000")
    assert model_catalog.model_info("vit-p8").family == "vit"


def test_catalog_and_data_sources_import_no_torch():
    code = ("import sys; import robustarch.models.catalog as c, robustarch.data, "
            "robustarch.data.sources, robustarch.config; c.list_models(); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_cuda_check_needs_no_torch_without_a_device(monkeypatch):
    """No visible device: answered without importing torch; with a device node, by torch."""
    from robustarch import runtime as cuda_check

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert cuda_check.cuda_available() is False
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(cuda_check.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(cuda_check.os.path, "exists", lambda path: False)
    assert cuda_check.cuda_available() is False
    monkeypatch.setattr(cuda_check.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cuda_check.cuda_available() is True
