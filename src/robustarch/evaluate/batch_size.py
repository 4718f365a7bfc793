"""The largest evaluation batch that fits on the GPU, found once per model and device, cached.

``evaluation.batch_size: auto`` asks for it. On CUDA the attack is tried on batches of halving
size (starting from the test split's size, capped) until one runs without running out of
memory; the size is cached in a JSON file keyed by architecture, scale, image size, GPU name,
attack kind and precision, so later jobs skip the search. On a CPU (where memory is rarely the
limit and a bigger batch is not faster) the configured size is used.

The cache is rewritten atomically (temporary file, then rename); two jobs racing may each
search once, and the last writer's entry wins, which is harmless.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_text
from ..attacks import pgd
from ..settings import AttackKind, AttackSettings

CACHE_ENV = "ROBUSTARCH_BATCH_SIZE_CACHE"
CPU_DEFAULT = 500  # "auto" on a CPU: the paper config's evaluation batch
MAX_START = 8192
# AutoAttack's APGD/FAB keep several batch-sized buffers besides the model's activations; the
# PGD probe does not, so their batch gets this much headroom.
AUTOATTACK_SHARE = 0.5


def default_cache_path() -> Path:
    """``$ROBUSTARCH_BATCH_SIZE_CACHE``, else ``$XDG_CACHE_HOME/robustarch/eval_batch_size.json``
    (``~/.cache`` when unset): sizes belong to a machine's GPUs, not to a workflow."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "robustarch" / "eval_batch_size.json"


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def largest_fitting(probe: Callable[[int], Any], start: int, minimum: int = 1) -> int:
    """The first of ``start, start // 2, ...`` (not below ``minimum``) for which ``probe(size)``
    does not run out of memory. Other errors, and running out of memory at ``minimum``,
    propagate."""
    if start < minimum or minimum < 1:
        raise ValueError(f"need start >= minimum >= 1, got start={start}, minimum={minimum}")
    size = start
    while True:
        try:
            probe(size)
            _release_memory()
            return size
        except Exception as error:
            if not is_out_of_memory(error) or size <= minimum:
                raise
        # Out here the failed attempt's traceback, and the tensors its frames hold, are gone.
        _release_memory()
        size = max(minimum, size // 2)


def cache_key(parts: Mapping[str, Any]) -> str:
    """A stable string key: ``name=value`` pairs sorted by name."""
    return "|".join(f"{k}={parts[k]}" for k in sorted(parts))


def read_cache(path: str | Path) -> dict[str, int]:
    """The cached sizes; an unreadable or missing file is an empty cache."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}


def write_cache_entry(path: str | Path, key: str, size: int) -> None:
    entries = read_cache(path)
    entries[key] = int(size)
    write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n", path)


def cached_largest_batch(probe: Callable[[int], Any], *, key: Mapping[str, Any],
                         cache_path: str | Path, start: int, minimum: int = 1) -> int:
    """:func:`largest_fitting`, looked up in and stored to the cache under ``key``."""
    name = cache_key(key)
    cached = read_cache(cache_path).get(name)
    if cached is not None:
        return cached
    size = largest_fitting(probe, start, minimum)
    write_cache_entry(cache_path, name, size)
    return size


def attack_probe(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                 settings: AttackSettings, *, device: torch.device, bf16: bool = False
                 ) -> Callable[[int], None]:
    """``probe(size)``: the attack's memory peak on ``size`` samples (``x`` uint8, repeated to
    fill the batch): a forward pass for kind clean, else two PGD steps (forward plus input
    gradient, the peak of PGD and of AutoAttack's gradient-based attacks)."""

    def probe(size: int) -> None:
        index = torch.arange(size) % len(x)
        xb = x[index].to(device).float().div_(255)
        yb = y[index].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if settings.kind is AttackKind.CLEAN:
                with torch.no_grad():
                    model(xb)
            else:  # the memory of a step does not depend on the budget
                pgd(model, xb, yb, norm=settings.norm, eps=settings.eps, steps=2,
                    step_size=settings.eps / 4)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return probe


def eval_batch_size(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                    settings: AttackSettings, *, configured: int | str, device: torch.device,
                    meta: Mapping[str, Any], bf16: bool = False,
                    cache_path: str | Path | None = None) -> int:
    """The evaluation batch size for ``evaluation.batch_size`` = ``configured``.

    An integer is used as is. ``"auto"``: on CUDA the cached or newly searched largest batch
    (``meta``: the model file's metadata, for arch, scale and image size); elsewhere
    :data:`CPU_DEFAULT`.
    """
    if configured != "auto":
        return int(configured)
    device = torch.device(device)
    if device.type != "cuda":
        return CPU_DEFAULT
    key = {
        "arch": meta["arch"], "scale": meta["scale"], "image_size": meta["image_size"],
        "device": torch.cuda.get_device_name(device), "attack": settings.kind.value,
        "norm": getattr(settings, "norm", "-"), "bf16": bool(bf16),
    }
    start = max(1, min(MAX_START, len(x)))
    size = cached_largest_batch(attack_probe(model, x, y, settings, device=device, bf16=bf16),
                                key=key, cache_path=cache_path or default_cache_path(),
                                start=start)
    if settings.kind is AttackKind.AUTOATTACK:
        size = max(1, int(size * AUTOATTACK_SHARE))
    return size
