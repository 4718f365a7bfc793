"""Common corruptions: CIFAR-10-C decoding from an archive the test builds (with its own md5),
seeded generation, resumable per-sample evaluation, and Table 4's aggregation."""

import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from robustarch.data import ARCHIVES, ChecksumError, UnsafeArchiveError, dataset_spec
from robustarch.data.corruption_files import (
    CORRUPTIONS,
    corrupt_images,
    generate_corruption,
    load_corruption,
    prepare_corruption,
    save_corruption,
)
from robustarch.evaluate.corruption_accuracy import (
    COLUMNS,
    evaluate_corruptions,
    write_corruption_outcomes,
)
from robustarch.evaluate.kept_results import discard_kept
from robustarch.report.paper import with_paper_table4
from robustarch.report.table4 import (
    collect_table4,
    corruption_accuracy,
    table4_display,
    table4_frame,
)

REPO = Path(__file__).resolve().parents[1]
CIFAR10C = dataset_spec("cifar10").corruption_archive
# Corruptions that draw random numbers (the others are deterministic functions of the image).
RANDOM = ["gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "snow",
          "frost", "fog", "elastic_transform"]


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _fake_cifar10c(path: Path, n: int = 4, extra: dict[str, bytes] | None = None,
                   root: str = "CIFAR-10-C", classes: int = 10):
    """CIFAR-10-C's layout: {corruption}.npy of 5 * n images, severity-major, labels.npy."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5 * n, 32, 32, 3), dtype=np.uint8)
    labels = np.tile(rng.integers(0, classes, size=n).astype(np.uint8), 5)
    with tarfile.open(path, "w") as tar:
        _add(tar, f"{root}/gaussian_noise.npy", _npy(images))
        _add(tar, f"{root}/labels.npy", _npy(labels))
        for name, data in (extra or {}).items():
            _add(tar, name, data)
    return images, labels, hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar10c_is_a_registered_download():
    spec = ARCHIVES[CIFAR10C.name]
    assert spec.url.startswith("https://zenodo.org/") and "2535967" in spec.url
    assert re.fullmatch(r"[0-9a-f]{32}", spec.md5)


def test_fake_cifar10c_archive_decodes_exact_pixels(tmp_path):
    archive = tmp_path / CIFAR10C.name
    images, labels, md5 = _fake_cifar10c(archive)
    out = tmp_path / "cifar10-c" / "gaussian_noise.pt"
    prepare_corruption("cifar10", "gaussian_noise", out, severities=[2, 5], archive=archive,
                       md5=md5)
    data = load_corruption(out)
    assert data["x"].shape == (2, 4, 3, 32, 32) and data["x"].dtype == torch.uint8
    assert data["severities"].tolist() == [2, 5] and data["corruption"] == "gaussian_noise"
    assert data["y"].tolist() == labels[:4].tolist() and data["y"].dtype == torch.int64
    # severity 5, image 3 is row 4 * 4 + 3 of the npy, stored channels-first
    assert np.array_equal(data["x"][1, 3].numpy(), images[19].transpose(2, 0, 1))
    assert np.array_equal(data["x"][0, 0].numpy(), images[4].transpose(2, 0, 1))
    assert [p.name for p in out.parent.iterdir()] == ["gaussian_noise.pt"]  # no temporaries


def test_wrong_checksum_is_refused_and_writes_nothing(tmp_path):
    archive = tmp_path / CIFAR10C.name
    _fake_cifar10c(archive)
    out = tmp_path / "cifar10-c" / "gaussian_noise.pt"
    with pytest.raises(ChecksumError, match="expected 0+"):
        prepare_corruption("cifar10", "gaussian_noise", out, archive=archive, md5="0" * 32)
    assert not out.exists() and not out.parent.exists()


def test_unsafe_or_incomplete_archives_are_refused(tmp_path):
    unsafe = tmp_path / "unsafe.tar"
    _, _, md5 = _fake_cifar10c(unsafe, extra={"../escape.npy": b"x"})
    with pytest.raises(UnsafeArchiveError, match="escape"):
        prepare_corruption("cifar10", "gaussian_noise", tmp_path / "a.pt", archive=unsafe,
                           md5=md5)
    archive = tmp_path / CIFAR10C.name
    _, _, md5 = _fake_cifar10c(archive)
    with pytest.raises(ValueError, match=r"not a CIFAR-10-C archive.*fog\.npy"):
        prepare_corruption("cifar10", "fog", tmp_path / "b.pt", archive=archive, md5=md5)
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "b.pt").exists()


def test_cifar100c_is_published_and_decoded_like_cifar10c(tmp_path):
    spec = dataset_spec("cifar100").corruption_archive
    assert ARCHIVES[spec.name] == spec and "3555552" in spec.url
    archive = tmp_path / spec.name
    images, labels, md5 = _fake_cifar10c(archive, root="CIFAR-100-C", classes=100)
    out = tmp_path / "cifar100-c" / "gaussian_noise.pt"
    with pytest.raises(ChecksumError, match=f"expected {spec.md5}"):  # the record's md5
        prepare_corruption("cifar100", "gaussian_noise", out, archive=archive)
    assert not out.exists()
    prepare_corruption("cifar100", "gaussian_noise", out, severities=[3], archive=archive,
                       md5=md5)
    data = load_corruption(out)
    assert data["x"].shape == (1, 4, 3, 32, 32) and data["y"].tolist() == labels[:4].tolist()
    assert np.array_equal(data["x"][0, 1].numpy(), images[9].transpose(2, 0, 1))
    with pytest.raises(ValueError, match=r"not a CIFAR-100-C archive.*fog\.npy"):
        prepare_corruption("cifar100", "fog", tmp_path / "fog.pt", archive=archive, md5=md5)
    with pytest.raises(ValueError, match="corruptions come from CIFAR-100-C.tar"):
        prepare_corruption("cifar100", "fog", tmp_path / "fog.pt")


@pytest.fixture(scope="module")
def images(digits):
    return digits["x_test"][:6], digits["y_test"][:6]


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_generation_is_seeded_batch_independent_and_keeps_the_shape(images, corruption):
    x, _ = images
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    first = corrupt_images(x, corruption, 3, seed=0)
    assert np.random.random() == expected_next  # NumPy's global RNG state is restored
    assert first.shape == x.shape and first.dtype == torch.uint8
    assert not torch.equal(first, x)
    assert torch.equal(first, corrupt_images(x, corruption, 3, seed=0))
    halves = torch.cat([corrupt_images(x[:2], corruption, 3, seed=0),
                        corrupt_images(x[2:], corruption, 3, seed=0, start=2)])
    assert torch.equal(first, halves)
    other = corrupt_images(x, corruption, 3, seed=1)
    if corruption in RANDOM:
        assert not torch.equal(first, other)
    else:
        assert torch.equal(first, other)


def test_generated_file_stacks_severities_and_takes_the_first_samples(tmp_path, images, digits):
    out = tmp_path / "digits-c" / "fog.pt"
    prepare_corruption("digits", "fog", out, severities=[1, 4], seed=7,
                       test=(digits["x_test"], digits["y_test"]), num_samples=6)
    data = load_corruption(out)
    x, y = images
    assert data["x"].shape == (2, 6, 3, 32, 32) and data["y"].tolist() == y.tolist()
    assert torch.equal(data["x"][1], corrupt_images(x, "fog", 4, seed=7))
    assert (data["x"][1].float() - x.float()).abs().mean() > (
        data["x"][0].float() - x.float()).abs().mean()  # severity 4 is stronger than 1


def test_odd_library_outputs_are_cast_back_to_the_input_shape(monkeypatch, images):
    import imagecorruptions

    def grey_float_and_smaller(image, severity, corruption_name):
        return np.full((31, 30), 300.7)  # too bright, float, grey and the wrong size

    monkeypatch.setattr(imagecorruptions, "corrupt", grey_float_and_smaller)
    out = corrupt_images(images[0], "contrast", 1, seed=0)
    assert out.shape == images[0].shape and out.dtype == torch.uint8
    assert (out == 255).all()
    with pytest.raises(ValueError, match="at least 32x32"):
        corrupt_images(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), "contrast", 1, seed=0)


def test_corruption_accuracy_matches_hand_computed_means(tmp_path):
    correct = {("fog", 1): [1, 1, 1, 0], ("fog", 2): [1, 0, 0, 0],
               ("snow", 1): [1, 1, 0, 0], ("snow", 2): [0, 0, 0, 0]}
    rows = [{"corruption": c, "severity": s, "index": i, "label": 3,
             "prediction": 3 if ok else 4, "correct": bool(ok)}
            for (c, s), oks in correct.items() for i, ok in enumerate(oks)]
    write_corruption_outcomes(pd.DataFrame(rows), tmp_path / "corruptions.parquet")
    mean, table = corruption_accuracy(pd.read_parquet(tmp_path / "corruptions.parquet"))
    assert mean == pytest.approx((0.75 + 0.25 + 0.5 + 0.0) / 4)
    assert table["corruption"].tolist() == ["fog", "snow"]
    assert table["accuracy"].tolist() == pytest.approx([0.5, 0.25])
    assert table["severity_1"].tolist() == pytest.approx([0.75, 0.5])
    assert table["severity_2"].tolist() == pytest.approx([0.25, 0.0])


class _Counting(nn.Module):
    """A fixed random linear classifier that counts the images it has classified."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(3 * 32 * 32, 10)
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return self.linear(x.flatten(1))


@pytest.fixture(scope="module")
def corruption_files(tmp_path_factory, digits):
    folder = tmp_path_factory.mktemp("digits-c")
    files = {}
    for corruption in ("contrast", "pixelate", "gaussian_noise"):
        files[corruption] = folder / f"{corruption}.pt"
        save_corruption(files[corruption], generate_corruption(
            digits["x_test"][:12], digits["y_test"][:12], corruption, [1, 3, 5], seed=0))
    return files


def test_evaluation_rows_and_num_samples(corruption_files):
    model = _Counting()
    frame = evaluate_corruptions(model, corruption_files, [5, 1], num_samples=7, batch_size=3,
                                 log=lambda m: None)
    assert list(frame.columns) == COLUMNS and len(frame) == 3 * 2 * 7 == model.seen
    assert frame.groupby(["corruption", "severity"], sort=False).size().index.tolist() == [
        (c, s) for c in corruption_files for s in (5, 1)]
    assert frame["index"].tolist()[:7] == list(range(7))
    data = load_corruption(corruption_files["pixelate"])
    with torch.no_grad():
        direct = model(data["x"][2, :7].float() / 255).argmax(1)  # severity 5 of pixelate
    rows = frame[(frame["corruption"] == "pixelate") & (frame["severity"] == 5)]
    assert rows["prediction"].tolist() == direct.tolist()
    assert (rows["label"] == data["y"][:7].numpy()).all()
    whole = evaluate_corruptions(_Counting(), corruption_files, [5, 1], num_samples=7,
                                 batch_size=500, log=lambda m: None)
    assert whole.equals(frame)  # batching does not change the outcome
    with pytest.raises(ValueError, match="severities"):
        evaluate_corruptions(model, corruption_files, [2], log=lambda m: None)


def test_interrupted_evaluation_resumes_to_the_same_frame(tmp_path, corruption_files):
    reference = evaluate_corruptions(_Counting(), corruption_files, [1, 3, 5],
                                     log=lambda m: None)

    def interrupt(corruption):
        raise KeyboardInterrupt(corruption)

    state = tmp_path / "checkpoints" / "corruptions"
    key = {"model_md5": "abc"}
    with pytest.raises(KeyboardInterrupt, match="contrast"):
        evaluate_corruptions(_Counting(), corruption_files, [1, 3, 5], state_dir=state,
                             state_key=key, on_saved=interrupt, log=lambda m: None)
    assert sorted(p.name for p in state.iterdir()) == ["contrast.parquet", "key.json"]
    model = _Counting()
    resumed = evaluate_corruptions(model, corruption_files, [1, 3, 5], state_dir=state,
                                   state_key=key, log=lambda m: None)
    assert model.seen == 2 * 3 * 12  # contrast was not evaluated again
    pd.testing.assert_frame_equal(resumed, reference)
    other = _Counting()  # another model file: its partial results must not be reused
    evaluate_corruptions(other, corruption_files, [1, 3, 5], state_dir=state,
                         state_key={"model_md5": "def"}, log=lambda m: None)
    assert other.seen == 3 * 3 * 12
    discard_kept(state)
    assert not state.parent.exists()


def test_table4_layout_order_and_paper_numbers(tmp_path):
    results = [
        {"dataset": "cifar10", "arch": "resnet", "method": "vanilla", "clean_acc": 0.9,
         "c_acc": 0.8},
        {"dataset": "cifar10", "arch": "resnet", "method": "pgd_linf", "clean_acc": 0.85,
         "c_acc": 0.7},
        {"dataset": "cifar10", "arch": "vit", "method": "vanilla", "clean_acc": 0.5,
         "c_acc": 0.25},
    ]
    frame = table4_frame(results, ["cifar10", "digits"])
    assert frame["architecture"].tolist() == ["ViT", "ResNet"]  # the paper's order
    assert list(frame.columns[:5]) == ["architecture", "cifar10_vanilla_acc",
                                       "cifar10_vanilla_c_acc", "cifar10_at_clean_acc",
                                       "cifar10_at_c_acc"]
    resnet = frame.iloc[1]
    assert resnet["cifar10_vanilla_acc"] == pytest.approx(90)
    assert resnet["cifar10_at_c_acc"] == pytest.approx(70)
    assert pd.isna(frame.iloc[0]["cifar10_at_clean_acc"]) and frame["digits_at_c_acc"].isna().all()
    paper = with_paper_table4(frame)
    assert paper.loc[paper["architecture"] == "ViT", "paper_cifar10_vanilla_acc"].item() == 86.73
    assert paper.loc[paper["architecture"] == "ResNet", "paper_cifar10_at_c_acc"].item() == 79.24
    assert not any(c.startswith("paper_digits") or c.startswith("paper_imagenette")
                   for c in paper.columns)
    assert "CIFAR-10 AT-C" in table4_display(frame).columns


def test_collect_table4_reads_each_models_outcomes(tmp_path):
    clean = pd.DataFrame({"index": range(4), "label": 0, "prediction": [0, 0, 0, 1],
                          "correct": [True, True, True, False]})
    corrupted = pd.DataFrame({"corruption": ["fog"] * 4, "severity": [1, 1, 2, 2],
                              "index": [0, 1, 0, 1], "label": 0, "prediction": [0, 1, 1, 1],
                              "correct": [True, False, False, False]})
    clean.to_parquet(tmp_path / "clean.parquet")
    write_corruption_outcomes(corrupted, tmp_path / "corruptions.parquet")
    results, per_corruption = collect_table4(
        [("digits", "vit", "vanilla")], [tmp_path / "clean.parquet"],
        [tmp_path / "corruptions.parquet"])
    assert results == [{"dataset": "digits", "arch": "vit", "method": "vanilla",
                        "clean_acc": 0.75, "c_acc": 0.25}]
    assert per_corruption.to_dict("records") == [
        {"dataset": "digits", "architecture": "ViT", "method": "vanilla", "corruption": "fog",
         "accuracy": 25.0, "severity_1": 50.0, "severity_2": 0.0}]


def test_workflow_plans_table4(tmp_path):
    # Without profiles/: profiles/default would apply itself.
    for name in ["Snakefile", "config.yaml", "rules", "workflow", "envs"]:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, tmp_path / name)
    shutil.copy(REPO / "profiles" / "demo" / "config.yaml", tmp_path / "demo.yaml")
    (tmp_path / "two.yaml").write_text(
        "studies:\n  corruptions:\n    architectures: [resnet, vit]\n"
        f"    corruptions: [{', '.join(CORRUPTIONS)}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile",
         "demo.yaml", "two.yaml", "--", "results/table4.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout[result.stdout.index("Job stats:"):]
    counts = {m.group(1): int(m.group(2))
              for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE)}
    assert counts["prepare_corruption"] == len(CORRUPTIONS)
    assert counts["evaluate_corruptions"] == 4 and counts["table4"] == 1
    assert counts["train"] == 4 and "download_archive" not in counts
