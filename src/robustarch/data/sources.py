"""The archives the workflow may download, and the corruption benchmark's names. No torch.

Planning the workflow (``snakemake -n``) needs only these facts; keeping them free of torch
saves the seconds its import costs on every plan. The archives come from the dataset modules
(:mod:`robustarch.data.registry`); ``ARCHIVES`` is computed on first use.
"""

from __future__ import annotations

from typing import Any

from .registry import ArchiveSpec, archives

__all__ = ["ARCHIVES", "CORRUPTIONS", "SEVERITIES", "ArchiveSpec"]  # noqa: F822 (lazy)

# The 15 corruptions of the benchmark (the validation corruptions are not used by the paper).
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
    "elastic_transform", "pixelate", "jpeg_compression",
)
SEVERITIES = (1, 2, 3, 4, 5)


def __getattr__(name: str) -> Any:
    # ARCHIVES (every downloadable archive by file name) asks the registry, which imports the
    # dataset modules: on first use, not on import.
    if name == "ARCHIVES":
        return archives()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
