"""The data jobs: download and verify an archive (rule ``download_archive``), decode a dataset
into uint8 tensor splits (rule ``prepare_dataset``), and write one corruption's test set (rule
``prepare_corruption``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

Log = Callable[[str], None]


def run_download_job(*, url: str, md5: str, archive: str | Path, log: Log) -> None:
    from .download import download

    log(f"downloading {url}")
    download(url, archive, md5)
    log(f"verified {archive}")


def run_prepare_dataset_job(*, dataset: str, archive: str | Path | None, train: str | Path,
                            test: str | Path, log: Log) -> None:
    from .splits import decode_dataset, save_split

    splits = decode_dataset(dataset, archive)
    for split, path in (("train", train), ("test", test)):
        x, y = splits[f"x_{split}"], splits[f"y_{split}"]
        sizes = splits.get(f"sizes_{split}")  # full frames (ImageNette's training split)
        save_split(path, x, y, sizes)
        frames = " (full frames, padded)" if sizes is not None else ""
        log(f"{split}: {tuple(x.shape)} images{frames}, {int(y.max()) + 1} classes")


def run_prepare_corruption_job(*, dataset: str, corruption: str, archive: str | Path | None,
                               test: str | Path | None, severities: Sequence[int],
                               seed: int | None, num_samples: int | None,
                               output: str | Path, log: Log) -> None:
    """Decode one corruption from the published archive, or generate it from the test split."""
    from .corruption_files import prepare_corruption
    from .splits import load_split

    data = prepare_corruption(dataset, corruption, output, severities=severities, seed=seed,
                              archive=archive, test=None if archive else load_split(test),
                              num_samples=num_samples)
    source = f"decoded from {archive}" if archive else f"generated, seed {seed}"
    log(f"{dataset}-c {corruption}: {tuple(data['x'].shape)} images ({source})")
