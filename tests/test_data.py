"""Data: archives built by the tests themselves (with their own checksums), never downloaded."""

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from robustarch.data import (
    ChecksumError,
    DownloadError,
    UnknownDatasetError,
    UnsafeArchiveError,
    dataset_spec,
    list_datasets,
    load_split,
    save_split,
)
from robustarch.data.datasets.cifar10 import load_cifar10_archive
from robustarch.data.datasets.imagenette import load_imagenette_archive
from robustarch.data.download import download


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _fake_cifar(path: Path, per_batch: int = 4, extra: dict[str, bytes] | None = None):
    rng = np.random.default_rng(0)
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10, size=per_batch).tolist()
            batches[name] = (data, labels)
            _add(tar, f"cifar-10-batches-py/{name}",
                 pickle.dumps({b"data": data, b"labels": labels}))
        for name, data in (extra or {}).items():
            _add(tar, name, data)
    return batches


def test_cifar10_archive_decodes_exact_pixels(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    batches = _fake_cifar(archive)
    data = load_cifar10_archive(archive, md5=_md5(archive))
    assert data["x_train"].shape == (20, 3, 32, 32) and data["x_train"].dtype == torch.uint8
    assert data["x_test"].shape == (4, 3, 32, 32)
    expected = batches["data_batch_2"][0][1].reshape(3, 32, 32)
    assert np.array_equal(data["x_train"][5].numpy(), expected)  # batch 2, row 1
    assert data["y_test"].tolist() == batches["test_batch"][1]


class _Marker:
    """Unpickling this creates a file: proof of whether anything was unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_bad_md5_refused_before_anything_is_unpickled(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    marker = tmp_path / "unpickled"
    with tarfile.open(archive, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            _add(tar, f"cifar-10-batches-py/{name}", pickle.dumps(_Marker(marker)))
    with pytest.raises(ChecksumError, match="md5 is .*, expected 0+"):
        load_cifar10_archive(archive, md5="0" * 32)
    assert not marker.exists()


@pytest.mark.parametrize("member", ["../evil", "/tmp/evil", "cifar-10-batches-py/../../evil"])
def test_path_traversal_archive_refused(tmp_path, member):
    archive = tmp_path / "cifar-10-python.tar.gz"
    _fake_cifar(archive, extra={member: b"x"})
    with pytest.raises(UnsafeArchiveError, match="absolute or '..' path"):
        load_cifar10_archive(archive, md5=_md5(archive))


def test_link_out_of_archive_refused(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../etc/passwd"
        tar.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="points outside"):
        load_cifar10_archive(archive, md5=_md5(archive))


def test_download_verifies_and_is_atomic(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"robustarch" * 1000)
    dest = tmp_path / "out" / "file.bin"
    assert download(source.as_uri(), dest, _md5(source)) == dest
    assert dest.read_bytes() == source.read_bytes()


def test_download_with_wrong_checksum_leaves_nothing(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"not the official archive")
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DownloadError, match=r"md5 .*expected 0+.*place it at"):
        download(source.as_uri(), dest, "0" * 32)
    assert list(dest.parent.iterdir()) == []


def test_unreachable_url_names_url_and_manual_path(tmp_path):
    dest = tmp_path / "file.tar.gz"
    url = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # discard port: connection refused
    with pytest.raises(DownloadError) as info:
        download(url, dest, "0" * 32, retries=2, backoff=0.0, timeout=5)
    assert url in str(info.value) and str(dest.resolve()) in str(info.value)
    assert not dest.exists() and not list(dest.parent.glob(f".{dest.name}.*"))


def test_imagenette_archive_decodes_full_training_frames(tmp_path):
    """Training frames keep their whole image: short side 256 (long side at most 512), padded
    on one canvas with their true sizes, portrait frames transposed; test images are Resize(256)
    + CenterCrop(224). The frames (PIL width x height) are landscape, portrait and very wide."""
    from PIL import Image

    archive = tmp_path / "imagenette2-320.tgz"
    wnids = [f"n{i:08d}" for i in range(10)]
    shapes = [(400, 320), (320, 400), (1100, 320)]  # PIL (width, height)
    expected_sizes = []
    with tarfile.open(archive, "w:gz") as tar:
        for split, count in [("train", 3), ("val", 1)]:
            for c, wnid in enumerate(wnids):
                for k in range(count):
                    buffer = io.BytesIO()
                    image = Image.new("RGB", shapes[k], (20 * c,) * 3)
                    if split == "train" and k == 1:  # a portrait frame, bright in its top rows
                        image.paste((250, 250, 250), (0, 0, 320, 40))
                    image.save(buffer, "JPEG", quality=95)
                    _add(tar, f"imagenette2-320/{split}/{wnid}/img{k}.JPEG", buffer.getvalue())
                    if split == "train":
                        expected_sizes.append({0: (256, 320), 1: (320, 256), 2: (148, 512)}[k])
        _add(tar, "imagenette2-320/noisy_imagenette.csv", b"path,label\n")
    data = load_imagenette_archive(archive, md5=_md5(archive))
    x, sizes = data["x_train"], data["sizes_train"]
    assert x.shape == (30, 3, 256, 512) and x.dtype == torch.uint8
    assert sorted(map(tuple, sizes.tolist())) == sorted(expected_sizes)
    assert data["x_test"].shape == (10, 3, 224, 224)
    assert sorted(data["y_train"].tolist()) == sorted(list(range(10)) * 3)
    for i, (h, w) in enumerate(sizes.tolist()):
        rows, cols = min(h, w), max(h, w)
        assert not x[i, :, rows:].any() and not x[i, :, :, cols:].any()  # zero padding only
        if h > w:  # portrait, stored transposed: its bright top rows are the left columns
            assert x[i, :, :rows, :30].float().mean() > 240
            assert x[i, :, :rows, 60:cols].float().mean() < 200
    # class index follows sorted wnids; the flat colour survives JPEG to within a few levels
    label = data["y_test"][3].item()
    assert abs(data["x_test"][3].float().mean().item() - 20 * label) < 3
    # the split files keep the sizes, and only a reader asking for them gets the frames
    save_split(tmp_path / "train.pt", x, data["y_train"], sizes)
    x2, y2, sizes2 = load_split(tmp_path / "train.pt", with_sizes=True)
    assert torch.equal(x2, x) and torch.equal(y2, data["y_train"]) and torch.equal(sizes2, sizes)
    with pytest.raises(ValueError, match="full frames.*with_sizes=True"):
        load_split(tmp_path / "train.pt")


def test_digits_split_is_fixed_and_stratified(digits):
    from robustarch.data.datasets.digits import load_digits_tensors

    again = load_digits_tensors()
    assert torch.equal(again["x_test"], digits["x_test"])
    assert digits["x_train"].shape == (1437, 3, 32, 32)
    assert digits["x_test"].shape == (360, 3, 32, 32)
    counts = torch.bincount(digits["y_test"], minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    assert torch.equal(digits["x_train"][:, 0], digits["x_train"][:, 2])  # grey as RGB


def test_split_roundtrip_and_corrupt_split(tmp_path):
    x = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(5)
    save_split(tmp_path / "train.pt", x, y)
    x2, y2 = load_split(tmp_path / "train.pt")
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, y3, sizes = load_split(tmp_path / "train.pt", with_sizes=True)
    assert torch.equal(x3, x) and torch.equal(y3, y) and sizes is None  # fixed-size images
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable dataset split.*delete it"):
        load_split(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not within the 8x8 canvas"):
        save_split(tmp_path / "frames.pt", x, y, torch.tensor([[8, 9]] * 5))
    with pytest.raises(ValueError, match=r"int64 of shape \(5, 2\)"):
        save_split(tmp_path / "frames.pt", x, y, torch.tensor([[8, 8]] * 4))


def test_unknown_dataset_lists_the_registered_ones():
    with pytest.raises(UnknownDatasetError) as info:
        dataset_spec("mnist")
    message = str(info.value)
    registered = ", ".join(list_datasets())
    assert registered.startswith("cifar10, cifar100, digits, imagenette")
    assert f"unknown dataset 'mnist'; registered datasets are: {registered}." in message
    assert "robustarch/data/datasets/" in message


def test_registry_holds_each_dataset_module_and_its_archives():
    from robustarch.data import ARCHIVES, DATASETS, registered_datasets

    assert list_datasets() == sorted(DATASETS) and DATASETS is registered_datasets()
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.display_name and callable(spec.decode)
        assert spec.decode.__module__ == f"robustarch.data.datasets.{name}"
        for archive in (spec.archive, spec.corruption_archive):
            assert archive is None or ARCHIVES[archive.name] == archive
    assert dataset_spec("digits").archive is None  # bundled with scikit-learn
    assert ARCHIVES["CIFAR-10-C.tar"] == dataset_spec("cifar10").corruption_archive


def test_a_dataset_is_registered_once_and_checked(monkeypatch):
    from robustarch.data import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry.registered_datasets()))
    facts = dict(display_name="X", archive=None, train_samples=2, test_samples=2,
                 image_size=32, num_classes=2, mean=(0.5,) * 3, std=(0.5,) * 3, crop=None,
                 autoaugment=None, budgets={"linf": "8/255"}, job_mem_mb=1, job_cpus=1)
    with pytest.raises(ValueError, match="'cifar10' is registered twice"):
        registry.register_dataset("cifar10", **facts)(dict)
    with pytest.raises(ValueError, match="unknown norms \\['l3'\\]"):
        registry.register_dataset("new", **{**facts, "budgets": {"l3": 1.0}})(dict)
    with pytest.raises(ValueError, match="lowercase letters"):
        registry.register_dataset("New-C", **facts)(dict)
    registry.register_dataset("new", **facts)(dict)
    assert registry.dataset_spec("new").config_facts()["augment"] == {"crop": None,
                                                                      "autoaugment": None}


def _fake_cifar100(path: Path, sizes=(6, 4), label_max: int = 99, members=("train", "test")):
    """CIFAR-100's python archive: cifar-100-python/{train,test,meta}, fine and coarse labels."""
    rng = np.random.default_rng(1)
    splits = {}
    with tarfile.open(path, "w:gz") as tar:
        for name, n in zip(["train", "test"], sizes, strict=True):
            data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
            fine = rng.integers(0, label_max + 1, size=n).tolist()
            fine[0] = label_max
            splits[name] = (data, fine)
            if name in members:
                batch = {b"data": data, b"fine_labels": fine, b"coarse_labels": [0] * n}
                _add(tar, f"cifar-100-python/{name}", pickle.dumps(batch))
        _add(tar, "cifar-100-python/meta", pickle.dumps({b"fine_label_names": []}))
    return splits


def test_cifar100_is_registered_with_its_facts():
    from robustarch.data import ARCHIVES

    spec = dataset_spec("cifar100")
    assert spec.display_name == "CIFAR-100" and spec.num_classes == 100
    assert (spec.train_samples, spec.test_samples, spec.image_size) == (50000, 10000, 32)
    assert spec.archive.url == "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    assert spec.archive.md5 == "eb9058c3a382ffc7106e4002c42a8d85"  # torchvision's tgz_md5
    cifar10 = dataset_spec("cifar10")
    assert spec.budgets == cifar10.budgets  # CIFAR-10's protocol (our choice)
    assert (spec.crop, spec.autoaugment) == (cifar10.crop, cifar10.autoaugment)
    assert ARCHIVES[spec.archive.name] == spec.archive
    assert ARCHIVES["CIFAR-100-C.tar"] == spec.corruption_archive


def test_cifar100_archive_decodes_exact_pixels_and_fine_labels(tmp_path):
    archive = tmp_path / "cifar-100-python.tar.gz"
    splits = _fake_cifar100(archive)
    data = dataset_spec("cifar100").decode(archive, _md5(archive))
    assert data["x_train"].shape == (6, 3, 32, 32) and data["x_train"].dtype == torch.uint8
    assert data["x_test"].shape == (4, 3, 32, 32) and data["y_test"].dtype == torch.int64
    assert np.array_equal(data["x_train"][2].numpy(), splits["train"][0][2].reshape(3, 32, 32))
    assert data["y_train"].tolist() == splits["train"][1] and data["y_train"][0] == 99
    assert data["y_test"].tolist() == splits["test"][1]


def test_cifar100_wrong_md5_is_refused_before_anything_is_unpickled(tmp_path):
    from robustarch.data.datasets.cifar100 import load_cifar100_archive

    archive = tmp_path / "cifar-100-python.tar.gz"
    marker = tmp_path / "unpickled"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("train", "test"):
            _add(tar, f"cifar-100-python/{name}", pickle.dumps(_Marker(marker)))
    with pytest.raises(ChecksumError) as info:
        load_cifar100_archive(archive)  # the official md5
    assert f"expected {dataset_spec('cifar100').archive.md5}" in str(info.value)
    assert "delete it and run the workflow again to re-download it" in str(info.value)
    assert not marker.exists()


def test_corrupt_or_incomplete_cifar100_archives_are_refused_clearly(tmp_path):
    from robustarch.data.datasets.cifar100 import load_cifar100_archive

    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ValueError, match=r"not a readable CIFAR-100 archive.*delete it"):
        load_cifar100_archive(garbage, md5=_md5(garbage))
    whole = tmp_path / "whole.tar.gz"
    _fake_cifar100(whole, sizes=(200, 4))
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"not a readable CIFAR-100 archive"):
        load_cifar100_archive(truncated, md5=_md5(truncated))
    no_test = tmp_path / "no_test.tar.gz"
    _fake_cifar100(no_test, members=("train",))
    with pytest.raises(ValueError, match=r"not a CIFAR-100 python archive \(missing \['test'\]\)"):
        load_cifar100_archive(no_test, md5=_md5(no_test))
    bad_labels = tmp_path / "labels.tar.gz"
    _fake_cifar100(bad_labels, label_max=100)
    with pytest.raises(ValueError, match=r"cifar-100-python/train has labels outside 0\.\.99"):
        load_cifar100_archive(bad_labels, md5=_md5(bad_labels))
    unsafe = tmp_path / "unsafe.tar.gz"
    with tarfile.open(unsafe, "w:gz") as tar:
        _add(tar, "cifar-100-python/../../evil", b"x")
    with pytest.raises(UnsafeArchiveError, match="absolute or '..' path"):
        load_cifar100_archive(unsafe, md5=_md5(unsafe))
