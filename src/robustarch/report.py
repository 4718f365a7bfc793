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
    "apgd_l1": "APGD-L1", "worst_case": "Worst-case", "stages": "Stages",
    "patch_size": "Patch size", "activation": "Activation",
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


def _extra_attacks(at_summaries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Attacks beyond the paper's four that the AT models were evaluated with, in order."""
    found = {a for s in at_summaries for a in s["accuracy"] if a != "clean"}
    return [a for a in EXTRA_ATTACKS if a in found] + sorted(
        found - set(PAPER_ATTACKS) - set(EXTRA_ATTACKS))


def _accuracy_columns(vanilla: Mapping[str, Any] | None, at: Mapping[str, Any] | None,
                      attacks: list[str]) -> dict[str, float | None]:
    """Vanilla and adversarially trained accuracies of one architecture, in percent."""
    row = {
        "vanilla_acc": _pct(vanilla["accuracy"].get("clean")) if vanilla else None,
        "clean_acc": _pct(at["accuracy"].get("clean")) if at else None,
    }
    for attack in attacks:
        row[attack] = _pct(at["accuracy"].get(attack)) if at else None
    row["worst_case"] = _pct(at["worst_case"]) if at else None
    return row


def _by_key(summaries: Iterable[Mapping[str, Any]], dataset: str | None = None
            ) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(s["arch"], s["method"]): s for s in summaries
            if dataset is None or s["dataset"] == dataset}


def table1_frame(summaries: Iterable[Mapping[str, Any]], architectures: pd.DataFrame,
                 dataset: str) -> pd.DataFrame:
    """Table 1 for ``dataset``: one row per architecture, accuracies in percent.

    ``summaries`` are ``summary.json`` contents with ``arch`` and ``method`` keys;
    ``architectures`` is ``results/architectures.csv``.
    """
    by_key = _by_key(summaries, dataset)
    archs = sorted({arch for arch, _ in by_key}, key=_order)
    attacks = PAPER_ATTACKS + _extra_attacks(s for (_, m), s in by_key.items() if m == "pgd_linf")
    size = _image_size(architectures, dataset)
    rows = []
    for arch in archs:
        info = architectures[(architectures["name"] == arch)
                             & (architectures["image_size"] == size)]
        rows.append({
            "architecture": display_name(arch),
            "category": info["category"].iloc[0] if len(info) else None,
            "params_m": float(info["params_m"].iloc[0]) if len(info) else None,
            **_accuracy_columns(by_key.get((arch, "vanilla")), by_key.get((arch, "pgd_linf")),
                                attacks),
        })
    columns = ["architecture", "category", "params_m", "vanilla_acc", "clean_acc", *attacks,
               "worst_case"]
    return pd.DataFrame(rows, columns=columns)


def study_frame(summaries: Iterable[Mapping[str, Any]], rows: Iterable[Mapping[str, Any]],
                *, at_method: str = "pgd_linf") -> pd.DataFrame:
    """A study table: one row per entry of ``rows`` (each with an ``arch`` key and the row's
    label columns, e.g. ``{"architecture": "CoAtNet-CCTC", "stages": "CCTC", "arch": ...}``),
    then Table 1's accuracy columns of its vanilla and ``at_method`` models. Missing models
    give missing cells, so a table can be built from a partial study."""
    summaries = list(summaries)
    by_key = _by_key(summaries)
    attacks = PAPER_ATTACKS + _extra_attacks(s for s in summaries if s["method"] == at_method)
    records = []
    for row in rows:
        labels = {k: v for k, v in row.items() if k != "arch"}
        records.append({**labels, **_accuracy_columns(by_key.get((row["arch"], "vanilla")),
                                                      by_key.get((row["arch"], at_method)),
                                                      attacks)})
    frame = pd.DataFrame(records)
    if at_method != "pgd_linf" or not any(m == "vanilla" for _, m in by_key):
        frame = frame.drop(columns=["vanilla_acc"])  # no vanilla models in this study
    return frame


def coatnet_layout(arch: str) -> str:
    """The stage layout of a CoAtNet name (``coatnet`` is CCTT, the paper's default)."""
    return arch.partition("-")[2] or "CCTT"


# Patch sizes of the base models (docs/architectures.md); variants carry theirs as "-p<N>".
BASE_PATCH_SIZES = {"vit": 4, "pvtv2": 4}


def patch_size(arch: str) -> int:
    base, _, variant = arch.partition("-")
    if variant.startswith("p") and variant[1:].isdigit():
        return int(variant[1:])
    if not variant and base in BASE_PATCH_SIZES:
        return BASE_PATCH_SIZES[base]
    raise ValueError(f"{arch!r} has no known patch size; use a -p<N> variant")


def table2_rows(architectures: Iterable[str]) -> list[dict[str, Any]]:
    return [{"architecture": f"CoAtNet-{coatnet_layout(a)}", "stages": coatnet_layout(a),
             "arch": a} for a in architectures]


def table3_rows(architectures: Iterable[str]) -> list[dict[str, Any]]:
    return [{"architecture": display_name(a.partition("-")[0]), "patch_size": patch_size(a),
             "arch": a} for a in architectures]


def activation_rows(architectures: Iterable[str]) -> list[dict[str, Any]]:
    """Each architecture with GELU (as registered) and its ``-relu`` twin."""
    return [{"architecture": display_name(a), "activation": act, "arch": name}
            for a in sorted(architectures, key=_order)
            for act, name in (("GELU", a), ("ReLU", f"{a}-relu"))]


def trades_rows(architectures: Iterable[str]) -> list[dict[str, Any]]:
    return [{"architecture": display_name(a), "arch": a}
            for a in sorted(architectures, key=_order)]


def with_paper_study_numbers(frame: pd.DataFrame, paper: str, keys: list[str]) -> pd.DataFrame:
    """Join a study's published numbers (``paper_*`` columns) on ``keys``."""
    published = paper_table(paper)
    published = published.rename(columns={c: f"paper_{c}" for c in published.columns
                                          if c not in keys})
    return frame.merge(published, on=keys, how="left")


def l1_penalty_frame(summaries: Iterable[Mapping[str, Any]], strengths: Iterable[float],
                     arch: str) -> pd.DataFrame:
    """Figure 3's data: clean and worst-case accuracy (%) of ``arch`` against λ."""
    from .config import l1_method

    by_key = _by_key(summaries)
    rows = []
    for strength in sorted(strengths):
        summary = by_key.get((arch, l1_method(strength)))
        rows.append({"lambda": strength, "method": l1_method(strength),
                     "clean_acc": _pct(summary["accuracy"].get("clean")) if summary else None,
                     "worst_case": _pct(summary["worst_case"]) if summary else None})
    return pd.DataFrame(rows)


def plot_l1_penalty(frame: pd.DataFrame, path: str | Path, *, arch: str) -> None:
    """Figure 3: worst-case and clean accuracy against the ℓ1 strength (symlog x axis, so
    λ = 0 sits left of the smallest positive λ)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positive = frame.loc[frame["lambda"] > 0, "lambda"]
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.8), constrained_layout=True)
    for ax, column, title in zip(axes, ["worst_case", "clean_acc"],
                                 ["Worst-case robust accuracy", "Clean accuracy"], strict=True):
        ax.plot(frame["lambda"], frame[column], marker="o")
        if len(positive):
            ax.set_xscale("symlog", linthresh=float(positive.min()))
        ax.set_xlabel("ℓ1 strength λ")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{display_name(arch)}: PGD-ℓ∞ adversarial training + λ·Σ|w|", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


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
