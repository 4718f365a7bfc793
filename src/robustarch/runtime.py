"""Where and how a job computes: its device, its seeds, and the "auto" switches.

Torch is imported inside the functions: planning the workflow asks :func:`cuda_available` once
and must not pay for importing torch on a machine that has no GPU.
"""

from __future__ import annotations

import glob
import os
import random
from typing import Any


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, answered without torch where no GPU can be visible."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    # NVIDIA's device nodes on Linux; /dev/dxg is WSL2's GPU paravirtualization device.
    if not glob.glob("/dev/nvidia[0-9]*") and not os.path.exists("/dev/dxg"):
        return False
    import torch

    return torch.cuda.is_available()


def select_device(preferred: str | None = None):
    """``preferred``, else the first CUDA device where there is one, else the CPU."""
    import torch

    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_auto(value: Any, default: bool) -> bool:
    """A config switch that may be ``"auto"``: ``default`` then, else the value itself."""
    return default if value == "auto" else bool(value)
