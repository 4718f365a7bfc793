"""Benchmark records, the speed-up ratio, machine/version facts, and the JSON file.

A record compares one of our code paths with a reference on the same work:
``{name, ours, reference, unit, ratio}``. ``ratio > 1`` always means ours is faster, whatever
the unit: for a throughput (higher is better) it is ``ours / reference``, for a duration
(lower is better) ``reference / ours``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from robustarch.atomic import write_text

# Units where a larger number is better; every other unit is a duration (smaller is better).
THROUGHPUT_UNITS = ("images/s",)
DURATION_UNITS = ("s",)


def speedup(ours: float, reference: float, unit: str) -> float:
    """How many times faster ours is than the reference (> 1: ours is faster)."""
    if unit in THROUGHPUT_UNITS:
        return ours / reference
    if unit in DURATION_UNITS:
        return reference / ours
    raise ValueError(f"unknown unit {unit!r}; known: {THROUGHPUT_UNITS + DURATION_UNITS}")


def median(values: list[float]) -> float:
    return float(statistics.median(values))


@dataclass
class Record:
    """One side-by-side comparison; ``ours`` and ``reference`` are medians of the repeats."""

    name: str
    ours: float
    reference: float
    unit: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return speedup(self.ours, self.reference, self.unit)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ours": self.ours, "reference": self.reference,
                "unit": self.unit, "ratio": self.ratio, "details": self.details}

    @classmethod
    def from_samples(cls, name: str, ours: list[float], reference: list[float], unit: str, /,
                     **details: Any) -> Record:
        """A record from per-repeat values taken in the same rounds (paired by position)."""
        paired = [speedup(o, r, unit) for o, r in zip(ours, reference, strict=True)]
        return cls(name, median(ours), median(reference), unit, {
            "repeats": len(ours),
            "ours_samples": [round(v, 4) for v in ours],
            "reference_samples": [round(v, 4) for v in reference],
            # Robust to load drifting between rounds on a shared machine: each round's two
            # measurements were taken back to back.
            "paired_ratio_median": median(paired),
            **details,
        })


def machine_info() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": None,
    }
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return info


def versions() -> dict[str, str | None]:
    import torch

    found: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("robustarch", "torch", "torchvision", "numpy", "torchattacks",
                 "adversarial-robustness-toolbox", "snakemake", "pillow"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    found["cuda"] = torch.version.cuda
    return found


def results_document(records: list[Record], *, machine: dict[str, Any],
                     versions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The content of ``benchmarks.json``: ``machine``, ``versions``, ``records`` and
    the extra sections (mode, goals, precision check, GPU figures)."""
    return {"machine": machine, "versions": versions,
            "records": [r.to_dict() for r in records], **extra}


def write_json(path: str | Path, document: dict[str, Any]) -> None:
    """``benchmarks.json``: the document in its own key order (not sorted)."""
    write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", path)
