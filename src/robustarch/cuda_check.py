"""Whether this machine has a usable CUDA GPU, without importing torch where it has none.

Planning the workflow asks this once (rules/common.smk sizes local GPU slots by it); importing
torch costs seconds of every ``snakemake -n``, so torch is asked only where a GPU device node
exists.
"""

from __future__ import annotations

import glob
import os


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, answered without torch where no GPU can be visible."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    # NVIDIA's device nodes on Linux; /dev/dxg is WSL2's GPU paravirtualization device.
    if not glob.glob("/dev/nvidia[0-9]*") and not os.path.exists("/dev/dxg"):
        return False
    import torch

    return torch.cuda.is_available()
