"""The tables in the paper's layout: booktabs LaTeX (a bare ``tabular`` for ``\\input``, which
needs ``booktabs`` and ``amsmath``), the same table as a small HTML page for Snakemake's report,
and a CSV beside each.

A :class:`Layout` says how a frame is shown: which columns in which order, headers grouped under
a spanning label (``\\multicolumn`` over a ``\\cmidrule``), a section column whose value is
shown once per run of rows with a ``\\midrule`` between runs (Table 1's categories), and which
numeric columns are integers. Numbers get two decimals, missing values ``--``.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..atomic import write_csv, write_text


class TeX(str):
    """LaTeX source, written as is; any other text is escaped."""


INF, L2, L1 = TeX(r"$\ell_\infty$"), TeX(r"$\ell_2$"), TeX(r"$\ell_1$")

HEADERS: dict[str, str] = {
    "architecture": "Architecture", "category": "Category", "params_m": "Params (M)",
    "vanilla_acc": "Vanilla", "clean_acc": "Clean", "pgd_linf": TeX(f"PGD-{INF}"),
    "aa_linf": TeX(f"AA-{INF}"), "pgd_l2": TeX(f"PGD-{L2}"), "pgd_l1": TeX(f"PGD-{L1}"),
    "apgd_l2": TeX(f"APGD-{L2}"), "apgd_l1": TeX(f"APGD-{L1}"), "worst_case": "Worst case",
    "stages": "Stage layout", "patch_size": "Patch size", "activation": "Activation",
    "pgd_linf_es": TeX(f"PGD-{INF} (ES)"), "pgd_l2_es": TeX(f"PGD-{L2} (ES)"),
    "pgd_l1_sparse": TeX(f"PGD-{L1} (sparse)"), "worst_case_all": "Worst case (all)",
    "rank_paper": "Paper", "rank_strong": "Strong",
}

# The LaTeX the headers and labels use, as the HTML page writes it.
TEX_TEXT = {r"$\ell_\infty$": "ℓ∞", r"$\ell_2$": "ℓ₂", r"$\ell_1$": "ℓ₁", r"$\rho$": "ρ",
            r"$\lambda$": "λ", r"$p$": "p", r"$-$": "−", r"\%": "%", "--": "–"}
TEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}
MISSING = "--"


@dataclass(frozen=True)
class Layout:
    """How a frame is shown (see the module docstring). ``groups``: ``(label, columns)``, each
    group's columns adjacent in ``columns``; those not shown are left out of it, and a group
    with none is dropped. ``headers`` override :data:`HEADERS`."""

    columns: Sequence[str] | None = None  # None: the frame's, in its order
    groups: Sequence[tuple[str, Sequence[str]]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    section: str | None = None
    integers: Sequence[str] = ()
    # column -> {text cell: its label}, e.g. a TeX form of a name
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def escape(text: str) -> str:
    """``text`` for LaTeX: as is for :class:`TeX`, else with its special characters escaped."""
    if isinstance(text, TeX):
        return str(text)
    return "".join(TEX_SPECIALS.get(char, char) for char in str(text))


def tex_to_text(text: str) -> str:
    """The plain (Unicode) text of a label: :data:`TEX_TEXT`'s LaTeX replaced."""
    if not isinstance(text, TeX):
        return str(text)
    plain = str(text)
    for tex, char in TEX_TEXT.items():
        plain = plain.replace(tex, char)
    if "\\" in plain or "$" in plain:
        raise ValueError(f"label {text!r} has LaTeX without a plain form; add it to TEX_TEXT")
    return plain


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        not isinstance(value, str) and pd.isna(value))


def _cell(value, integer: bool, labels: Mapping[str, str], *, tex: bool) -> str:
    if _missing(value):
        return MISSING if tex else "–"
    if isinstance(value, str):
        value = labels.get(value, value)
        return escape(value) if tex else html.escape(tex_to_text(value))
    if isinstance(value, bool | numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        number = f"{abs(value):.0f}" if integer else f"{abs(value):.2f}"
        if value < 0 and float(number) != 0:
            return (r"$-$" if tex else "−") + number
        return number
    return escape(str(value)) if tex else html.escape(str(value))


@dataclass(frozen=True)
class _Table:
    """A frame resolved against its layout: what both renderers write."""

    headers: list[str]
    groups: list[tuple[str | None, int]]  # (label or None for ungrouped, columns spanned)
    sections: list[list[list]]  # rows of raw values, one list per section
    integer: list[bool]
    numeric: list[bool]
    labels: list[Mapping[str, str]]


def _resolve(frame: pd.DataFrame, layout: Layout) -> _Table:
    columns = list(frame.columns if layout.columns is None else
                   [c for c in layout.columns if c in frame.columns])
    position = {c: i for i, c in enumerate(columns)}
    if layout.section is not None and layout.section not in position:
        raise ValueError(f"section column {layout.section!r} is not among the shown {columns}")
    spans: list[tuple[str | None, int]] = []
    covered = 0
    for label, members in layout.groups:
        shown = sorted(position[c] for c in members if c in position)
        if not shown:
            continue
        if shown != list(range(shown[0], shown[-1] + 1)) or shown[0] < covered:
            raise ValueError(f"group {label!r}: its columns {list(members)} are not adjacent "
                             f"after those before it in {columns}")
        spans += [(None, 1)] * (shown[0] - covered) + [(label, len(shown))]
        covered = shown[-1] + 1
    spans += [(None, 1)] * (len(columns) - covered)
    sections: list[list[list]] = []
    previous = object()
    for row in frame[columns].astype(object).itertuples(index=False):
        row = list(row)
        if layout.section is not None:
            key = row[position[layout.section]]
            key = None if _missing(key) else key
            first = key != previous or not sections
            if first:
                sections.append([])
            if not first or key is None:
                row[position[layout.section]] = ""  # once per section; none when missing
            previous = key
        elif not sections:
            sections.append([])
        sections[-1].append(row)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(
        frame[c]) for c in columns]
    return _Table(headers=[layout.headers.get(c, HEADERS.get(c, c)) for c in columns],
                  groups=spans, sections=sections,
                  integer=[c in layout.integers for c in columns], numeric=numeric,
                  labels=[layout.labels.get(c, {}) for c in columns])


def _comment(caption: str | None) -> str:
    return "".join(f"% {line}\n" for line in caption.splitlines()) if caption else ""


def to_latex(frame: pd.DataFrame, *, caption: str | None = None,
             layout: Layout = Layout()) -> str:
    """A booktabs ``tabular`` of ``frame`` in ``layout`` (the caption as a comment above it)."""
    table = _resolve(frame, layout)
    spec = "".join("r" if n else "l" for n in table.numeric)
    lines = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule"]
    if any(label is not None for label, _ in table.groups):
        cells, rules, start = [], [], 1
        for label, width in table.groups:
            if label is None:
                cells += [""] * width
            else:
                cells.append(f"\\multicolumn{{{width}}}{{c}}{{{escape(label)}}}")
                rules.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
            start += width
        lines += [" & ".join(cells) + r" \\", " ".join(rules)]
    lines.append(" & ".join(escape(h) for h in table.headers) + r" \\")
    for section in table.sections:
        lines.append(r"\midrule")
        for row in section:
            lines.append(" & ".join(_cell(v, i, names, tex=True) for v, i, names in
                                    zip(row, table.integer, table.labels, strict=True))
                         + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return _comment(caption) + "\n".join(lines) + "\n"


HTML_STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; border-top: 2px solid black; border-bottom: 2px solid black; }
caption { caption-side: top; text-align: left; padding-bottom: 0.6em; max-width: 60em; }
th, td { padding: 0.2em 0.7em; white-space: nowrap; }
th { font-weight: 600; }
th.group { border-bottom: 1px solid #555; }
thead tr:last-child th { border-bottom: 1px solid black; }
tbody + tbody { border-top: 1px solid black; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def to_html(frame: pd.DataFrame, *, caption: str | None = None,
            layout: Layout = Layout()) -> str:
    """The same table as a self-contained HTML page (for Snakemake's report)."""
    table = _resolve(frame, layout)
    title = html.escape(caption or "table")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{title}</title><style>{HTML_STYLE}</style></head><body>", "<table>"]
    if caption:
        parts.append(f"<caption>{html.escape(caption)}</caption>")
    parts.append("<thead>")
    if any(label is not None for label, _ in table.groups):
        cells = "".join(f'<th colspan="{w}"></th>' if label is None else
                        f'<th class="group" colspan="{w}">{html.escape(tex_to_text(label))}</th>'
                        for label, w in table.groups)
        parts.append(f"<tr>{cells}</tr>")
    parts.append("<tr>" + "".join(f"<th>{html.escape(tex_to_text(h))}</th>"
                                  for h in table.headers) + "</tr></thead>")
    for section in table.sections:
        parts.append("<tbody>")
        for row in section:
            cells = [(' class="num"' if numeric else "", _cell(v, i, names, tex=False))
                     for v, i, numeric, names in zip(row, table.integer, table.numeric,
                                                     table.labels, strict=True)]
            parts.append("<tr>" + "".join(f"<td{c}>{v}</td>" for c, v in cells) + "</tr>")
        parts.append("</tbody>")
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


def write_table(frame: pd.DataFrame, tex_path: str | Path, csv_path: str | Path | None = None,
                *, csv_frame: pd.DataFrame | None = None, caption: str | None = None,
                layout: Layout = Layout(), html_path: str | Path | None = None) -> None:
    """Write the LaTeX table of ``frame`` in ``layout``, its HTML page (when ``html_path`` is
    given) and its CSV (of ``csv_frame`` when given: the published numbers beside ours),
    atomically."""
    write_text(to_latex(frame, caption=caption, layout=layout), tex_path)
    if html_path is not None:
        write_text(to_html(frame, caption=caption, layout=layout), html_path)
    if csv_path is not None:
        write_csv(frame if csv_frame is None else csv_frame, csv_path)
