"""Which memory format a model computes fastest in.

channels_last (NHWC) speeds up convolutions on CUDA for every family, and on a CPU for the CNNs
(docs/benchmarks.md); the other families gain nothing there from it.
"""

from __future__ import annotations

from ..runtime import resolve_auto


def is_convolutional(arch: str) -> bool:
    """Whether ``arch`` is a registered CNN (False for a model built outside the registry)."""
    from .catalog import model_info

    try:
        return model_info(arch).category == "CNN"
    except KeyError:
        return False


def uses_channels_last(setting: bool | str, arch: str, device) -> bool:
    """A ``channels_last`` config switch resolved: "auto" is on CUDA, and for CNNs on a CPU."""
    return resolve_auto(setting, device.type == "cuda" or is_convolutional(arch))


def memory_format(setting: bool | str, arch: str, device):
    """``torch.channels_last`` or ``torch.contiguous_format`` for :func:`uses_channels_last`."""
    import torch

    return torch.channels_last if uses_channels_last(setting, arch, device) else \
        torch.contiguous_format
