"""Finished parts of an evaluation job kept in a state folder until the whole job is written:
the corruptions of a corruption evaluation, the attacks of a per_model evaluation. The folder
holds a key (what the parts were computed with: model file, settings); a different key empties
it, so parts of another model or other settings are never reused."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import write_text
from ..errors import describe_error

KEY_FILE = "key.json"


def open_kept(state_dir: Path, key: Mapping[str, Any]) -> None:
    """Keep the folder's parts only if they were made with ``key`` (JSON values); otherwise
    start afresh."""
    key_file = state_dir / KEY_FILE
    wanted = json.dumps(dict(key), sort_keys=True)
    try:
        current = key_file.read_text()
    except OSError:
        current = None
    if current != wanted:
        shutil.rmtree(state_dir, ignore_errors=True)
        state_dir.mkdir(parents=True, exist_ok=True)
        write_text(wanted, key_file)


def load_kept(path: Path, log: Callable[[str], None]) -> pd.DataFrame | None:
    """A kept part, or None if there is none or it is unreadable."""
    if not path.exists():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # a damaged part costs that part, not the run
        log(f"WARNING: {path} is unreadable ({describe_error(exc)}); evaluating it again")
        path.unlink(missing_ok=True)
        return None


def discard_kept(state_dir: str | Path) -> None:
    """Remove a finished job's state folder, and the model's once empty."""
    state_dir = Path(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty: another job of the model still uses it
        state_dir.parent.rmdir()
