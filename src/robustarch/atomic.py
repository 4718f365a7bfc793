"""Atomic file writes: every file the workflow produces is written here.

A job killed mid-write (a preempted node, an out-of-memory kill) must leave either the old file
or the new one, never half of one: Snakemake would take a truncated output of a finished rule for
a result. So each writer writes a temporary file beside the target, flushes and fsyncs it, renames
it onto the target (``os.replace`` is atomic on POSIX filesystems) and fsyncs the folder so the
rename survives a crash too.

One temporary-name scheme: ``.<name>.<pid>.tmp`` in the target's folder. The dot keeps it out of
globs, the pid keeps two processes writing the same file (two jobs filling one cache) apart, and
:func:`remove_temporaries` finds what a killed writer left. A writer that fails removes its
temporary file before the error propagates.

Only what the writers need is imported at module level; pandas, torch and numpy are imported by
the functions that write their objects.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_path",
    "remove_temporaries",
    "save_figure",
    "save_npz",
    "save_torch",
    "temporary_name",
    "write_atomic",
    "write_bytes",
    "write_csv",
    "write_json",
    "write_parquet",
    "write_text",
]


def temporary_name(path: str | Path) -> Path:
    """The temporary file a write of ``path`` goes through (this process's)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def remove_temporaries(path: str | Path) -> None:
    """Remove the temporary files that killed writers of ``path`` left behind."""
    path = Path(path)
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; best effort (not every filesystem supports it).
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is fsynced and moved onto ``path``.

    For writers that take a file name (``DataFrame.to_parquet``, ``savefig``) rather than an
    open file. On an error the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a binary file opened for the temporary path, then move it onto
    ``path``. Returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
    return path


def write_bytes(data: bytes, path: str | Path) -> Path:
    return write_atomic(path, lambda fh: fh.write(data))


def write_text(text: str, path: str | Path) -> Path:
    """UTF-8 text, newlines written as given."""
    return write_bytes(text.encode("utf-8"), path)


def write_json(data: Mapping[str, Any], path: str | Path, *, compact: bool = False,
               allow_nan: bool = True) -> Path:
    """JSON with sorted keys and a final newline: indented by 2, or ``compact`` (no spaces; for
    files with long lists such as histograms). ``allow_nan=False`` turns a NaN into an error here
    rather than a file other tools cannot read."""
    if compact:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=allow_nan)
    else:
        text = json.dumps(data, indent=2, sort_keys=True, allow_nan=allow_nan)
    return write_text(text + "\n", path)


def write_csv(frame, path: str | Path) -> Path:
    """A pandas DataFrame as CSV, without its index."""
    return write_text(frame.to_csv(index=False), path)


def write_parquet(frame, path: str | Path) -> Path:
    """A pandas DataFrame as parquet, without its index."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


def save_torch(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)``: model files, checkpoints, dataset splits."""
    import torch

    return write_atomic(path, lambda fh: torch.save(obj, fh))


def save_npz(path: str | Path, **arrays: Any) -> Path:
    """``numpy.savez`` of ``arrays`` (written through a file object, so no suffix is added)."""
    import numpy as np

    return write_atomic(path, lambda fh: np.savez(fh, **arrays))


def save_figure(fig, path: str | Path, **savefig_kwargs: Any) -> Path:
    """A matplotlib figure, in the format of ``path``'s suffix (PDF when it has none)."""
    fmt = Path(path).suffix.lstrip(".") or "pdf"  # the temporary name has no usable suffix
    return write_atomic(path, lambda fh: fig.savefig(fh, format=fmt, **savefig_kwargs))
