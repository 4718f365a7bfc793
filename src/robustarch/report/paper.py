"""The paper's published numbers (``paper_data/*.csv``), joined beside ours."""

from __future__ import annotations

from importlib import resources

import pandas as pd


def paper_table(name: str) -> pd.DataFrame:
    """One of the paper's published tables (``table1_cifar10`` … ``table4_corruptions``)."""
    with resources.files("robustarch.report.paper_data").joinpath(f"{name}.csv").open() as fh:
        return pd.read_csv(fh)


def with_paper_columns(frame: pd.DataFrame, paper: str, keys: list[str],
                       columns: list[str] | None = None) -> pd.DataFrame:
    """``frame`` with the published table ``paper``'s numbers as ``paper_*`` columns, joined on
    ``keys`` (only ``columns`` of it, when given)."""
    published = paper_table(paper)
    if columns is not None:
        published = published[[*keys, *columns]]
    published = published.rename(columns={c: f"paper_{c}" for c in published.columns
                                          if c not in keys})
    return frame.merge(published, on=keys, how="left")


def with_paper_numbers(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Add the paper's Table 1 numbers (``paper_*`` columns) where the paper has them."""
    if dataset != "cifar10":
        return frame
    paper = paper_table("table1_cifar10")
    columns = [c for c in paper.columns if c not in ("architecture", "category")]
    return with_paper_columns(frame, "table1_cifar10", ["architecture"], columns)


def with_paper_table4(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the paper's Table 4 numbers (``paper_*`` columns) for the datasets it covers."""
    paper = paper_table("table4_corruptions")
    ours = [c for c in paper.columns if c != "architecture" and c in frame.columns]
    if not ours:
        return frame
    return with_paper_columns(frame, "table4_corruptions", ["architecture"], ours)
