"""Tables in the paper's layout: a DataFrame, a CSV beside it, and booktabs LaTeX (tabulate)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

# The paper's names, in the order of its Table 1 (Transformers, hybrids, CNNs).
PAPER_NAMES = {
    "vit": "ViT", "mlpmixer": "MLP-Mixer", "poolformer": "PoolFormer", "swin": "Swin Transformer",
    "pvtv2": "PVTv2", "coatnet": "CoAtNet", "cpvt": "CPVT", "vitae": "ViTAE", "cct": "CCT",
    "levit": "LeViT", "mobilevit": "MobileViT", "botnet": "BoTNet", "ceit": "CeiT", "cvt": "CvT",
    "vgg": "VGG", "wideresnet": "WideResNet", "densenet": "DenseNet",
    "preactresnet": "PreActResNet", "resnet": "ResNet", "resnext": "ResNeXt",
}
PAPER_ATTACKS = ["pgd_linf", "aa_linf", "pgd_l2", "pgd_l1"]
EXTRA_ATTACKS = ["apgd_l2", "apgd_l1"]  # beyond the paper; other attacks follow alphabetically
HEADERS = {
    "architecture": "Architecture", "category": "Category", "params_m": "Params (M)",
    "vanilla_acc": "Vanilla", "clean_acc": "Clean", "pgd_linf": "PGD-Linf",
    "aa_linf": "AA-Linf", "pgd_l2": "PGD-L2", "pgd_l1": "PGD-L1", "apgd_l2": "APGD-L2",
    "apgd_l1": "APGD-L1", "worst_case": "Worst-case",
}


def display_name(arch: str) -> str:
    """``coatnet-CCTC`` → ``CoAtNet-CCTC``; unknown names are kept."""
    base, _, variant = arch.partition("-")
    name = PAPER_NAMES.get(base, base)
    return f"{name}-{variant}" if variant else name


def paper_table(name: str) -> pd.DataFrame:
    """One of the paper's published tables (``table1_cifar10`` … ``table4_corruptions``)."""
    with resources.files("robustarch.paper_data").joinpath(f"{name}.csv").open() as fh:
        return pd.read_csv(fh)


def _order(arch: str) -> tuple[int, str]:
    names = list(PAPER_NAMES)
    base = arch.partition("-")[0]
    return (names.index(base) if base in names else len(names), arch)


def table1_frame(summaries: Iterable[Mapping[str, Any]], architectures: pd.DataFrame,
                 dataset: str) -> pd.DataFrame:
    """Table 1 for ``dataset``: one row per architecture, accuracies in percent.

    ``summaries`` are ``summary.json`` contents with ``arch`` and ``method`` keys;
    ``architectures`` is ``results/architectures.csv``.
    """
    by_key = {(s["arch"], s["method"]): s for s in summaries if s["dataset"] == dataset}
    archs = sorted({arch for arch, _ in by_key}, key=_order)
    at_attacks = {a for (_, m), s in by_key.items() if m == "pgd_linf"
                  for a in s["accuracy"] if a != "clean"}
    extra = [a for a in EXTRA_ATTACKS if a in at_attacks] + sorted(
        at_attacks - set(PAPER_ATTACKS) - set(EXTRA_ATTACKS))
    size = _image_size(architectures, dataset)
    rows = []
    for arch in archs:
        info = architectures[(architectures["name"] == arch)
                             & (architectures["image_size"] == size)]
        vanilla = by_key.get((arch, "vanilla"))
        at = by_key.get((arch, "pgd_linf"))
        row = {
            "architecture": display_name(arch),
            "category": info["category"].iloc[0] if len(info) else None,
            "params_m": float(info["params_m"].iloc[0]) if len(info) else None,
            "vanilla_acc": _pct(vanilla["accuracy"].get("clean")) if vanilla else None,
            "clean_acc": _pct(at["accuracy"].get("clean")) if at else None,
        }
        for attack in PAPER_ATTACKS + extra:
            row[attack] = _pct(at["accuracy"].get(attack)) if at else None
        row["worst_case"] = _pct(at["worst_case"]) if at else None
        rows.append(row)
    columns = ["architecture", "category", "params_m", "vanilla_acc", "clean_acc",
               *PAPER_ATTACKS, *extra, "worst_case"]
    return pd.DataFrame(rows, columns=columns)


def _image_size(architectures: pd.DataFrame, dataset: str) -> int:
    sizes = architectures.loc[architectures["dataset"] == dataset, "image_size"]
    if sizes.empty:
        raise ValueError(f"architectures table has no rows for dataset {dataset!r}")
    return int(sizes.iloc[0])


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def with_paper_numbers(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Add the paper's Table 1 numbers (``paper_*`` columns) where the paper has them."""
    if dataset != "cifar10":
        return frame
    paper = paper_table("table1_cifar10").drop(columns=["category"])
    paper = paper.rename(columns={c: f"paper_{c}" for c in paper.columns if c != "architecture"})
    return frame.merge(paper, on="architecture", how="left")


def to_latex(frame: pd.DataFrame, *, caption: str | None = None) -> str:
    """Booktabs LaTeX of ``frame`` (two decimals, '--' where a value is missing)."""
    headers = [HEADERS.get(c, c) for c in frame.columns]
    body = tabulate(frame.astype(object).where(frame.notna(), None).values.tolist(),
                    headers=headers, tablefmt="latex_booktabs", floatfmt=".2f",
                    missingval="--", disable_numparse=False)
    head = f"% {caption}\n" if caption else ""
    return head + body + "\n"


def write_table(frame: pd.DataFrame, tex_path: str | Path, csv_path: str | Path | None = None,
                *, csv_frame: pd.DataFrame | None = None, caption: str | None = None) -> None:
    """Write the LaTeX table (and its CSV) atomically."""
    for path, text in [(tex_path, to_latex(frame, caption=caption)),
                       (csv_path, None if csv_path is None else
                        (frame if csv_frame is None else csv_frame).to_csv(index=False))]:
        if path is None:
            continue
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
