"""Booktabs LaTeX tables (tabulate) with a CSV beside each."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tabulate import tabulate

from ..atomic import write_csv, write_text

HEADERS = {
    "architecture": "Architecture", "category": "Category", "params_m": "Params (M)",
    "vanilla_acc": "Vanilla", "clean_acc": "Clean", "pgd_linf": "PGD-Linf",
    "aa_linf": "AA-Linf", "pgd_l2": "PGD-L2", "pgd_l1": "PGD-L1", "apgd_l2": "APGD-L2",
    "apgd_l1": "APGD-L1", "worst_case": "Worst-case", "stages": "Stages",
    "patch_size": "Patch size", "activation": "Activation",
    "pgd_linf_es": "PGD-Linf (ES)", "pgd_l2_es": "PGD-L2 (ES)", "pgd_l1_sparse": "PGD-L1 (sparse)",
    "worst_case_all": "Worst-case (all)", "rank_paper": "Rank (paper)",
    "rank_strong": "Rank (strong)",
}


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
    """Write the LaTeX table of ``frame`` and its CSV (of ``csv_frame`` when given: the
    published numbers beside ours), atomically."""
    write_text(to_latex(frame, caption=caption), tex_path)
    if csv_path is not None:
        write_csv(frame if csv_frame is None else csv_frame, csv_path)
