"""The reproduction scorecard (results/scorecard.{md,csv,tex}): did we reproduce the paper, and
do its conclusions hold?

Three parts, all computed from the per-sample outcomes (``eval/<attack>.parquet``,
``eval/corruptions.parquet``) so that every number has a 95 % interval and every comparison a
paired test (:mod:`robustarch.report.statistics`):

- **cells**: every cell of Tables 1–4 we reproduce, ours with its interval, the paper's number
  (where the paper has one: CIFAR-10, and ImageNette in Table 4) and the difference;
- **rank correlations**: per column, Spearman's ρ and Kendall's τ between our ranking and the
  paper's, with a bootstrap interval over test samples (the same resampled indices for every
  model, the paper's numbers fixed);
- **findings**: the paper's conclusions as named checks (:data:`FINDINGS`), each with a rule,
  a verdict under both evaluation protocols, and its evidence.

A finding's inputs may not have been run (a study not configured, an architecture missing):
it is then "not run", with the reason, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..settings import l1_method
from . import statistics as st
from .names import display_name, paper_order
from .paper import paper_table
from .studies import coatnet_layout, patch_size
from .table1 import PAPER_ATTACKS

Key = tuple[str, str, str]  # (dataset, arch, method)
AT = "pgd_linf"
NORMS = ("linf", "l2", "l1")
CNN, TRANSFORMER, HYBRID = "CNN", "Transformer", "Hybrid"
PAPER_DATASETS = {"table1": "cifar10", "table2": "cifar10", "table3": "cifar10"}
TABLE4_PAPER_DATASETS = ("cifar10", "imagenette")


@dataclass(frozen=True)
class Protocol:
    """The columns a protocol reads: its worst case and, per norm, its attack columns."""

    name: str
    worst: str
    norm_columns: Mapping[str, tuple[str, ...]]

    @property
    def attack_columns(self) -> list[str]:
        return [c for norm in NORMS for c in self.norm_columns[norm]]

    @property
    def signed_columns(self) -> list[tuple[str, int]]:
        """(column, direction) of each attack column: +1 under ℓ∞, -1 under ℓ2 and ℓ1 (the sign
        the paper's ℓ∞-vs-ℓ1/ℓ2 trade-off claims expect)."""
        return [(c, 1 if norm == "linf" else -1) for norm in NORMS for c in self.norm_columns[norm]]


# The paper's protocol: its four attacks and its worst case. The strong protocol: per norm, the
# sample-wise worst case over every attack of that norm a model was evaluated with (the paper's
# and the strong protocol's, so never above the paper's), and worst_case_all over all of them.
PAPER = Protocol("paper", "worst_case",
                 {"linf": ("pgd_linf", "aa_linf"), "l2": ("pgd_l2",), "l1": ("pgd_l1",)})
STRONG = Protocol("strong", "worst_case_all",
                  {"linf": ("strong_linf",), "l2": ("strong_l2",), "l1": ("strong_l1",)})
PROTOCOLS = (PAPER, STRONG)
STRONG_COUNTERPART = {"strong_linf": "pgd_linf", "strong_l2": "pgd_l2", "strong_l1": "pgd_l1",
                      "worst_case_all": "worst_case"}

LABELS = {
    "clean": "clean", "pgd_linf": "PGD-ℓ∞", "aa_linf": "AA-ℓ∞", "pgd_l2": "PGD-ℓ2",
    "pgd_l1": "PGD-ℓ1", "worst_case": "worst case", "worst_case_all": "worst case (all attacks)",
    "strong_linf": "ℓ∞ (all ℓ∞ attacks)", "strong_l2": "ℓ2 (all ℓ2 attacks)",
    "strong_l1": "ℓ1 (all ℓ1 attacks)", "corruptions": "corruptions",
    "vanilla_acc": "vanilla clean", "clean_acc": "AT clean", "vanilla_c_acc": "vanilla corruptions",
    "at_clean_acc": "AT clean", "at_c_acc": "AT corruptions",
}


def label(column: str) -> str:
    return LABELS.get(column, column)


# ---------------------------------------------------------------------------------------------
# Per-sample outcomes


def _model_key(path: str | Path) -> Key:
    parts = Path(path).parts
    if len(parts) < 5 or parts[-2] != "eval":
        raise ValueError(f"{path}: not an outcome file "
                         "(results/<dataset>/<arch>/<method>/eval/<name>.parquet)")
    return parts[-5], parts[-4], parts[-3]


class Results:
    """The run's per-sample outcomes, read on demand.

    ``vector(key, column)`` is a model's per-sample outcome (a float Series indexed by test
    sample) for a column: ``clean`` or an attack (its parquet file), ``worst_case`` /
    ``worst_case_all`` (the AND over the attacks ``summary.json`` lists for it), ``strong_<norm>``
    (the AND over every attack of that norm the summary lists), ``corruptions`` (a sample's mean
    over corruptions × severities). None where the inputs do not have it.
    """

    def __init__(self, *, summaries: Iterable[Mapping[str, Any]] = (),
                 outcomes: Iterable[str | Path] = (), corruptions: Iterable[str | Path] = (),
                 attack_norms: Mapping[str, str] | None = None) -> None:
        self.summaries = {(s["dataset"], s["arch"], s["method"]): s for s in summaries}
        self._paths = {(_model_key(p), Path(p).stem): Path(p) for p in outcomes}
        self._corruptions = {_model_key(p): Path(p) for p in corruptions}
        self.attack_norms = dict(attack_norms or {})
        self._cache: dict[tuple[Key, str], pd.Series | None] = {}
        self._labels: dict[str, pd.Series] = {}

    def put(self, key: Key, column: str, values: Sequence[float] | pd.Series) -> None:
        """Set a model's per-sample outcome for a column directly (outcomes held in memory;
        a plain sequence is indexed 0 … n − 1)."""
        series = values if isinstance(values, pd.Series) else pd.Series(
            np.asarray(values, dtype=float))
        self._cache[(key, column)] = series.astype(float)

    def has(self, key: Key, column: str = "clean") -> bool:
        return self.vector(key, column) is not None

    def vector(self, key: Key, column: str) -> pd.Series | None:
        if (key, column) not in self._cache:
            self._cache[(key, column)] = self._load(key, column)
        return self._cache[(key, column)]

    def _load(self, key: Key, column: str) -> pd.Series | None:
        if column == "corruptions":
            path = self._corruptions.get(key)
            return None if path is None else self._corruption_vector(key, path)
        summary = self.summaries.get(key)
        if column in ("worst_case", "worst_case_all"):
            attacks = summary.get(f"{column}_attacks") if summary else None
            return self._all_of(key, attacks or [])
        if column.startswith("strong_"):
            if summary is None:
                return None
            norm = column[len("strong_"):]
            return self._all_of(key, [a for a in summary["accuracy"] if a != "clean"
                                      and self.attack_norms.get(a) == norm])
        path = self._paths.get((key, column))
        return None if path is None else self._read(key, path)

    def _all_of(self, key: Key, attacks: Sequence[str]) -> pd.Series | None:
        vectors = [self.vector(key, a) for a in attacks]
        if not vectors or any(v is None for v in vectors):
            return None
        return pd.concat(vectors, axis=1, join="inner").min(axis=1)

    def _check_labels(self, dataset: str, labels: pd.Series, path: Path) -> None:
        known = self._labels.setdefault(dataset, labels)
        common = known.index.intersection(labels.index)
        if not (known.loc[common] == labels.loc[common]).all():
            raise ValueError(f"{path}: its labels differ from other {dataset} outcome files on "
                             "the same sample indices; the files come from different test sets. "
                             "Re-run the stale evaluation.")
        if len(common) < len(labels):
            self._labels[dataset] = pd.concat([known, labels[~labels.index.isin(common)]])

    def _read(self, key: Key, path: Path) -> pd.Series:
        frame = pd.read_parquet(path, columns=["index", "label", "correct"])
        frame = frame.drop_duplicates("index").set_index("index").sort_index()
        self._check_labels(key[0], frame["label"], path)
        return frame["correct"].astype(float)

    def _corruption_vector(self, key: Key, path: Path) -> pd.Series:
        frame = pd.read_parquet(path, columns=["corruption", "severity", "index", "label",
                                               "correct"])
        self._check_labels(key[0], frame.groupby("index")["label"].first(), path)
        return frame.groupby("index")["correct"].mean().astype(float).sort_index()


class Evidence:
    """Tests and intervals on :class:`Results`' per-sample outcomes.

    Vectors compared together are aligned on the test samples they all have (normally all of
    them); the bootstrap resamples those with the same indices for every vector."""

    def __init__(self, results: Results, bootstrap: st.PairedBootstrap | None = None) -> None:
        self.results = results
        self.bootstrap = bootstrap or st.PairedBootstrap()
        self.notes: set[str] = set()

    def matrix(self, items: Sequence[tuple[Key, str]]) -> np.ndarray | None:
        vectors = [self.results.vector(key, column) for key, column in items]
        if not vectors or any(v is None for v in vectors):
            return None
        joined = pd.concat(vectors, axis=1, join="inner")
        largest = max(len(v) for v in vectors)
        if len(joined) < largest:
            self.notes.add(f"{items[0][0][0]}: some models were evaluated on different test "
                           f"samples; comparisons use the {len(joined)} they share (of "
                           f"{largest})")
        return joined.to_numpy(dtype=float).T

    def cell(self, key: Key, column: str) -> dict[str, Any] | None:
        """A model's accuracy with its 95 % interval: Wilson for 0/1 outcomes, the bootstrap
        percentile interval for a per-sample mean over corruptions."""
        vector = self.results.vector(key, column)
        if vector is None or len(vector) == 0:
            return None
        values = vector.to_numpy()
        n = len(values)
        if st.is_binary(values):
            low, high = st.wilson_interval(values.sum(), n)
            method = "Wilson"
        else:
            low, high = st.percentile_interval(self.bootstrap.means(values[None])[:, 0])
            method = "bootstrap"
        return {"estimate": float(values.mean()), "low": float(low), "high": float(high),
                "n": n, "interval": method}

    def compare(self, a: Key, b: Key, column: str, description: str, direction: int = 1,
                role: str = "test") -> st.Part | None:
        """A − B in accuracy: McNemar's test; the interval from the paired bootstrap."""
        matrix = self.matrix([(a, column), (b, column)])
        if matrix is None:
            return None
        test = st.mcnemar(matrix[0], matrix[1])
        difference = matrix[0] - matrix[1]
        ci = st.percentile_interval(self.bootstrap.means(difference[None])[:, 0])
        name = "McNemar exact" if test.exact else "McNemar χ²"
        return st.Part(description, float(difference.mean()), f"{name} ({test.a_only}/"
                       f"{test.b_only} discordant)", direction=direction, ci=ci,
                       p_value=test.p_value, role=role, n=matrix.shape[1])

    def contrast(self, weights: Mapping[Key, float], column: str, description: str,
                 direction: int = 1, kind: str = st.DIRECTION, margin: float | None = None,
                 role: str = "test") -> st.Part | None:
        """Σ_k w_k · accuracy_k (e.g. a mean over one group minus a mean over another): it is
        the mean of a per-sample combination, so the paired bootstrap gives its interval and
        two-sided p-value."""
        keys = list(weights)
        matrix = self.matrix([(k, column) for k in keys])
        if matrix is None:
            return None
        combined = np.asarray([weights[k] for k in keys]) @ matrix
        replicates = self.bootstrap.means(combined[None])[:, 0]
        return st.Part(description, float(combined.mean()),
                       f"paired bootstrap ({self.bootstrap.samples})", kind=kind,
                       direction=direction, ci=st.percentile_interval(replicates),
                       p_value=st.bootstrap_p_value(replicates), margin=margin, role=role,
                       n=matrix.shape[1])

    def resampled(self, items: Sequence[tuple[Key, str]]
                  ) -> tuple[np.ndarray, np.ndarray] | None:
        """(point accuracies (m), bootstrap accuracies (B × m)) of the items, paired."""
        matrix = self.matrix(items)
        if matrix is None:
            return None
        return matrix.mean(axis=1), self.bootstrap.means(matrix)

    def trend(self, keys: Sequence[Key], x: Sequence[float], column: str, description: str,
              direction: int = 1) -> st.Part | None:
        """Spearman's ρ between a fixed property x of each model and its accuracy; interval and
        p-value from the paired bootstrap."""
        resampled = self.resampled([(k, column) for k in keys])
        if resampled is None or len(keys) < 2:
            return None
        point, boot = resampled
        replicates = st.spearman_rows(boot, x)
        return st.Part(description, st.spearman(point, x),
                       f"Spearman ρ, paired bootstrap ({self.bootstrap.samples})",
                       direction=direction, ci=st.percentile_interval(replicates),
                       p_value=st.bootstrap_p_value(replicates), unit="", n=boot.shape[1])

    def agreement(self, first: Sequence[Key], second: Sequence[Key], column: str,
                  description: str) -> st.Part | None:
        """Kendall's τ between the accuracies of two sets of models (model i of ``first`` with
        model i of ``second``), both resampled with the same indices."""
        resampled = self.resampled([(k, column) for k in [*first, *second]])
        if resampled is None:
            return None
        point, boot = resampled
        m = len(first)
        replicates = st.kendall_pairs(boot[:, :m], boot[:, m:])
        estimate = float(st.kendall_pairs(point[None, :m], point[None, m:])[0])
        return st.Part(description, estimate,
                       f"Kendall τ, paired bootstrap ({self.bootstrap.samples})",
                       ci=st.percentile_interval(replicates),
                       p_value=st.bootstrap_p_value(replicates), unit="", n=m)

    def correlation_with(self, items: Sequence[tuple[Key, str]], fixed: Sequence[float]
                         ) -> dict[str, Any] | None:
        """Spearman's ρ and Kendall's τ of the items' accuracies with fixed numbers (the
        paper's), each with its bootstrap interval."""
        resampled = self.resampled(items)
        if resampled is None:
            return None
        point, boot = resampled
        return {"n": len(items),
                "spearman": st.spearman(point, fixed),
                "spearman_ci": st.percentile_interval(st.spearman_rows(boot, fixed)),
                "kendall": st.kendall(point, fixed),
                "kendall_ci": st.percentile_interval(st.kendall_rows(boot, fixed))}


# ---------------------------------------------------------------------------------------------
# Findings


@dataclass
class Finding:
    """One of the paper's conclusions, checked under both protocols."""

    id: str
    claim: str
    source: str
    rule: str
    dataset: str | None = None
    parts: dict[str, list[st.Part]] = field(default_factory=dict)
    evidence: dict[str, list[str]] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    protocol_independent: bool = False

    def skip(self, reason: str) -> Finding:
        self.not_run = {p.name: reason for p in PROTOCOLS}
        return self

    def add(self, protocol: str, parts: Iterable[st.Part | None], reason: str) -> None:
        """The protocol's parts (missing ones dropped, and said so; none at all: not run,
        ``reason``)."""
        parts = list(parts)
        missing = sum(p is None for p in parts)
        if missing and missing < len(parts):
            self.note(protocol, f"{missing} of {len(parts)} parts not computed (outcomes "
                      "missing, or too few models for them); the verdict rests on the others")
        parts = st.with_holm([p for p in parts if p is not None])
        self.parts[protocol] = parts
        if not any(p.role == "test" for p in parts):
            self.not_run[protocol] = reason

    def note(self, protocol: str | None, line: str) -> None:
        for name in [protocol] if protocol else [p.name for p in PROTOCOLS]:
            self.evidence.setdefault(name, []).append(line)

    def verdict(self, protocol: str) -> str:
        if protocol in self.not_run:
            return st.NOT_RUN
        return st.finding_verdict(self.parts.get(protocol, []))


@dataclass
class Context:
    """What the checks read: the workflow's configuration (``spec``, see
    :func:`build_scorecard`), the outcomes, and the analyses' CSVs."""

    spec: Mapping[str, Any]
    evidence: Evidence
    sparsity: pd.DataFrame | None = None
    landscape: pd.DataFrame | None = None

    @property
    def results(self) -> Results:
        return self.evidence.results

    @property
    def primary(self) -> str:
        return self.spec["dataset"]

    def category(self, arch: str) -> str | None:
        return self.spec["categories"].get(arch)

    def study(self, name: str) -> Mapping[str, Any] | None:
        return self.spec["studies"].get(name)

    def run(self, keys: Iterable[Key], column: str = "clean") -> list[Key]:
        return [k for k in keys if self.results.has(k, column)]


def _study_spec(ctx: Context, finding: Finding, name: str, method: str | None = None
                ) -> Mapping[str, Any] | None:
    """Study ``name``'s configuration, with ``finding.dataset`` set to its dataset; None, and
    ``finding`` skipped, where the study is not configured (or not with ``method``)."""
    spec = ctx.study(name)
    if spec is None or (method is not None and method not in spec["methods"]):
        with_method = f" with {method}" if method is not None else ""
        finding.skip(f"not run: studies.{name} is not configured{with_method}")
        return None
    finding.dataset = spec["dataset"]
    return spec


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def _group_weights(groups: Mapping[str, Sequence[Key]], plus: str, minus: str
                   ) -> dict[Key, float]:
    """Weights of mean(plus group) − mean(minus group)."""
    weights = {k: 1 / len(groups[plus]) for k in groups[plus]}
    weights.update({k: -1 / len(groups[minus]) for k in groups[minus]})
    return weights


def _group_means(ctx: Context, groups: Mapping[str, Sequence[Key]], column: str) -> str:
    shown = []
    for name, keys in groups.items():
        values = [ctx.results.vector(k, column) for k in keys]
        values = [v.mean() for v in values if v is not None]
        if values:
            shown.append(f"{name} {_pct(float(np.mean(values)))} ({len(values)})")
    return f"mean accuracy (%) under {label(column)}: " + ", ".join(shown)


FIRST_THREE = ("pvtv2", "coatnet", "resnet")
RULE_F1 = ("Table 1's PGD-ℓ∞ models, worst case (paper: worst_case; strong: worst_case_all). "
           "Parts: PVTv2 − X > 0 and CoAtNet − X > 0 for every other architecture X that was "
           "run (ResNet among them), each by McNemar's test on the paired per-sample outcomes. "
           "Needs PVTv2, CoAtNet and ResNet.")


def finding_most_robust(ctx: Context) -> Finding:
    finding = Finding("F1", "Under the worst case, PVTv2 and CoAtNet are the most robust "
                      "architectures, ahead of ResNet.", "Table 1", RULE_F1, ctx.primary)
    key = {a: (ctx.primary, a, AT) for a in {*ctx.spec["architectures"], *FIRST_THREE}}
    missing = [a for a in FIRST_THREE if not ctx.results.has(key[a])]
    if missing:
        return finding.skip(f"not run: no PGD-ℓ∞ model of {', '.join(map(display_name, missing))}"
                            f" on {ctx.primary}")
    others = [a for a in ctx.spec["architectures"]
              if a not in ("pvtv2", "coatnet") and ctx.results.has(key[a])]
    for protocol in PROTOCOLS:
        column = protocol.worst
        parts = [ctx.evidence.compare(key[top], key[other], column,
                                      f"{display_name(top)} − {display_name(other)}")
                 for top in ("pvtv2", "coatnet") for other in others]
        finding.add(protocol.name, parts, f"not run: no {column} outcomes")
        ranked = sorted(((ctx.results.vector(key[a], column).mean(), a) for a in
                         [*others, "pvtv2", "coatnet"] if ctx.results.has(key[a], column)),
                        reverse=True)
        finding.note(protocol.name, f"{label(column)} ranking: " + ", ".join(
            f"{i + 1}. {display_name(a)} {_pct(v)}" for i, (v, a) in enumerate(ranked)))
    return finding


RULE_F2 = ("Table 1's PGD-ℓ∞ models grouped by category (CNN vs Transformer; hybrids are not "
           "in either group). Parts: mean CNN accuracy − mean Transformer accuracy > 0 under each "
           "ℓ∞ column (paper: PGD-ℓ∞, AA-ℓ∞; strong: the sample-wise worst case over every ℓ∞ "
           "attack run) and < 0 under each ℓ2 and ℓ1 column (paper: PGD-ℓ2, PGD-ℓ1; strong: "
           "every ℓ2 resp. ℓ1 attack run). Test: paired bootstrap over test samples (the "
           "architectures are fixed: the claim is about these models).")


def _category_groups(ctx: Context, keys: Iterable[Key], categories: Sequence[str]
                     ) -> dict[str, list[Key]]:
    return {c: [k for k in keys if ctx.category(k[1]) == c] for c in categories}


def finding_cnn_vs_transformer(ctx: Context) -> Finding:
    finding = Finding("F2", "CNNs beat Transformers under ℓ∞ attacks (PGD, AA) but lose under "
                      "ℓ1/ℓ2 attacks.", "Table 1", RULE_F2, ctx.primary)
    keys = ctx.run((ctx.primary, a, AT) for a in ctx.spec["architectures"])
    groups = _category_groups(ctx, keys, [CNN, TRANSFORMER, HYBRID])
    if not groups[CNN] or not groups[TRANSFORMER]:
        return finding.skip("not run: needs PGD-ℓ∞ models of at least one CNN and one "
                            f"Transformer on {ctx.primary}")
    weights = _group_weights(groups, CNN, TRANSFORMER)
    for protocol in PROTOCOLS:
        parts = []
        for column, direction in protocol.signed_columns:
            parts.append(ctx.evidence.contrast(weights, column, f"CNN − Transformer, "
                                               f"{label(column)}", direction=direction))
            finding.note(protocol.name, _group_means(ctx, groups, column))
        finding.add(protocol.name, parts, "not run: no outcomes of the protocol's attacks")
    return finding


RULE_F3 = ("Table 2's PGD-ℓ∞ CoAtNet layouts, worst case. Parts: (a) Spearman's ρ between a "
           "layout's number of transformer stages (T) and its accuracy > 0 (interval and p-value "
           "from the paired bootstrap over test samples); (b) CCTT − X > 0 for every other "
           "layout X (McNemar). Needs CCTT and at least one other layout.")


def finding_coatnet_layouts(ctx: Context) -> Finding:
    finding = Finding("F3", "CoAtNet layouts with more attention stages generalize better, "
                      "and CCTT is the best.", "Table 2", RULE_F3)
    spec = _study_spec(ctx, finding, "coatnet_layouts", AT)
    if spec is None:
        return finding
    keys = ctx.run((spec["dataset"], a, AT) for a in spec["architectures"])
    best = [k for k in keys if coatnet_layout(k[1]) == "CCTT"]
    if not best or len(keys) < 2:
        return finding.skip("not run: needs the CCTT layout and another one")
    others = [k for k in keys if k not in best]
    stages = [coatnet_layout(k[1]).count("T") for k in keys]
    if len(set(stages)) < 2:
        return finding.skip("not run: the layouts run all have the same number of attention "
                            "stages")
    for protocol in PROTOCOLS:
        column = protocol.worst
        parts = [ctx.evidence.trend(keys, stages, column, "ρ(attention stages, accuracy)")]
        parts += [ctx.evidence.compare(best[0], k, column, f"CCTT − {coatnet_layout(k[1])}")
                  for k in others]
        finding.add(protocol.name, parts, f"not run: no {column} outcomes")
        finding.note(protocol.name, f"{label(column)} (%): " + ", ".join(
            f"{coatnet_layout(k[1])} {_pct(ctx.results.vector(k, column).mean())}"
            for k in keys if ctx.results.has(k, column)))
    return finding


RULE_F4 = ("Table 3, for each base architecture with at least two patch sizes run: its "
           "smallest patch size S vs its largest L (PGD-ℓ∞ models). Parts: S − L > 0 under each "
           "ℓ∞ column, S − L < 0 under each ℓ2 and ℓ1 column (columns as in F2), McNemar.")


def finding_patch_size(ctx: Context) -> Finding:
    finding = Finding("F4", "Smaller patches raise ℓ∞ robustness and lower ℓ1/ℓ2 robustness.",
                      "Table 3", RULE_F4)
    spec = _study_spec(ctx, finding, "patch_size", AT)
    if spec is None:
        return finding
    bases: dict[str, list[tuple[int, Key]]] = {}
    for key in ctx.run((spec["dataset"], a, AT) for a in spec["architectures"]):
        try:
            bases.setdefault(key[1].partition("-")[0], []).append((patch_size(key[1]), key))
        except ValueError:
            finding.note(None, f"{key[1]}: no known patch size, left out")
    pairs = [(min(v)[1], max(v)[1], min(v)[0], max(v)[0]) for v in bases.values()
             if len({p for p, _ in v}) > 1]
    if not pairs:
        return finding.skip("not run: no architecture has two patch sizes run")
    for protocol in PROTOCOLS:
        parts = []
        for small, large, ps, pl in pairs:
            name = display_name(small[1].partition("-")[0])
            parts += [ctx.evidence.compare(small, large, column,
                                           f"{name} p{ps} − p{pl}, {label(column)}",
                                           direction=direction)
                      for column, direction in protocol.signed_columns]
        finding.add(protocol.name, parts, "not run: no outcomes of the protocol's attacks")
    return finding


RULE_F5 = ("Activation study, PGD-ℓ∞ models of its non-CNN architectures, worst case: "
           "d = mean over architectures of (GELU − ReLU), paired bootstrap. Holds if the 95 % "
           f"interval of d lies below +{100 * st.NO_IMPROVEMENT_MARGIN:g} percentage point(s) "
           "and d is not significantly > 0; does not hold if d is significantly > 0 (GELU "
           "improves); undecided otherwise. Per-architecture McNemar tests are evidence.")


def finding_activation(ctx: Context) -> Finding:
    finding = Finding("F5", "GELU does not improve on ReLU for Transformers.",
                      "activation table", RULE_F5)
    spec = _study_spec(ctx, finding, "activation", AT)
    if spec is None:
        return finding
    dataset = spec["dataset"]
    pairs = [((dataset, a, AT), (dataset, f"{a}-relu", AT)) for a in spec["architectures"]
             if ctx.category(a) != CNN]
    pairs = [(g, r) for g, r in pairs if ctx.results.has(g) and ctx.results.has(r)]
    if not pairs:
        return finding.skip("not run: no non-CNN architecture with both its GELU and ReLU "
                            "PGD-ℓ∞ models")
    weights = {}
    for gelu, relu in pairs:
        weights[gelu], weights[relu] = 1 / len(pairs), -1 / len(pairs)
    for protocol in PROTOCOLS:
        column = protocol.worst
        parts = [ctx.evidence.contrast(weights, column, f"mean GELU − ReLU, {label(column)}",
                                       kind=st.NO_IMPROVEMENT,
                                       margin=st.NO_IMPROVEMENT_MARGIN)]
        parts += [ctx.evidence.compare(g, r, column, f"{display_name(g[1])}: GELU − ReLU",
                                       role="evidence") for g, r in pairs]
        finding.add(protocol.name, parts, f"not run: no {column} outcomes")
    return finding


RULE_F6 = ("TRADES study vs the PGD-ℓ∞ models of the same architectures on its dataset. Per "
           "column (clean, each attack column of the protocol, its worst case): Kendall's τ "
           "between the architectures' TRADES and PGD-ℓ∞ accuracies > 0; paired bootstrap over "
           "test samples (both models of every architecture resampled with the same indices). "
           "Needs at least 3 architectures.")


def finding_trades(ctx: Context) -> Finding:
    finding = Finding("F6", "TRADES gives the same tendency as PGD adversarial training.",
                      "TRADES table vs Table 1", RULE_F6)
    spec = _study_spec(ctx, finding, "trades")
    if spec is None:
        return finding
    dataset = spec["dataset"]
    archs = [a for a in spec["architectures"] if ctx.results.has((dataset, a, "trades"))
             and ctx.results.has((dataset, a, AT))]
    if len(archs) < 3:
        return finding.skip(f"not run: needs TRADES and PGD-ℓ∞ models of at least 3 "
                            f"architectures on {dataset}; {len(archs)} run")
    trades = [(dataset, a, "trades") for a in archs]
    pgd = [(dataset, a, AT) for a in archs]
    for protocol in PROTOCOLS:
        parts = [ctx.evidence.agreement(trades, pgd, column, f"τ(TRADES, PGD-ℓ∞), {label(column)}")
                 for column in ["clean", *protocol.attack_columns, protocol.worst]]
        finding.add(protocol.name, parts, "not run: no outcomes of the protocol's attacks")
    return finding


RULE_F7 = ("ℓ1-penalty study (Figure 3): d = mean over λ > 0 of accuracy(λ) − accuracy(λ = 0). "
           "Parts: d > 0 for the worst case (paper: worst_case; strong: worst_case_all) and "
           "d < 0 for clean accuracy; paired bootstrap. Per-λ McNemar tests are evidence.")


def finding_l1_penalty(ctx: Context) -> Finding:
    finding = Finding("F7", "The ℓ1 penalty raises the worst case and lowers clean accuracy.",
                      "Figure 3", RULE_F7)
    spec = _study_spec(ctx, finding, "l1_penalty")
    if spec is None:
        return finding
    dataset, arch = spec["dataset"], spec["architecture"]
    base = (dataset, arch, l1_method(0))
    penalized = ctx.run((dataset, arch, l1_method(s)) for s in spec["lambdas"] if s > 0)
    if not ctx.results.has(base) or not penalized:
        return finding.skip("not run: needs the λ = 0 model and at least one λ > 0")
    weights = {k: 1 / len(penalized) for k in penalized}
    weights[base] = -1.0
    for protocol in PROTOCOLS:
        parts = []
        for column, direction in ((protocol.worst, 1), ("clean", -1)):
            parts.append(ctx.evidence.contrast(weights, column, f"mean over λ > 0 − λ = 0, "
                                               f"{label(column)}", direction=direction))
            parts += [ctx.evidence.compare(k, base, column, f"{k[2]} − λ = 0, {label(column)}",
                                           direction=direction, role="evidence")
                      for k in penalized]
        finding.add(protocol.name, parts, f"not run: no {protocol.worst} outcomes")
    return finding


def sparsity_column(frame: pd.DataFrame) -> str:
    """The trained-only sparsity where the analysis records it, else all weights'."""
    return "sparsity_trained" if "sparsity_trained" in frame.columns else "sparsity"


def _at_methods(ctx: Context) -> list[str]:
    return [m for m in dict.fromkeys(m for _, m in ctx.spec["analysis"]["models"])
            if m != "vanilla"]


RULE_F8 = ("Analysed adversarially trained models (analysis.architectures × analysis.methods "
           "without vanilla). Parts: (a) sparsity of all weights (sparsity.csv, component "
           "'all'; the trained-only column where present): mean Transformer − mean CNN > 0, "
           "exact two-sided Mann–Whitney U test over architectures (a model's sparsity is exact; "
           "the architectures are the sample); (b) Spearman's ρ(sparsity, worst case) > 0 over "
           "the analysed models of every category, two-sided permutation test over the models; "
           "its interval is the paired bootstrap over test samples (the evaluation's noise "
           "only).")


def _sparsity_rows(ctx: Context, dataset: str, component: str) -> pd.DataFrame:
    frame = ctx.sparsity
    rows = frame[(frame["dataset"] == dataset) & (frame["component"] == component)]
    return rows[rows["method"].isin(_at_methods(ctx))]


def finding_sparsity(ctx: Context) -> Finding:
    finding = Finding("F8", "Adversarially trained Transformers are sparser than CNNs, and "
                      "sparsity correlates with the worst case.", "Figure 1, sparsity scatter",
                      RULE_F8, ctx.spec["analysis"]["dataset"])
    if ctx.sparsity is None or not _at_methods(ctx):
        return finding.skip("not run: no sparsity analysis of adversarially trained models")
    column = sparsity_column(ctx.sparsity)
    models = {tuple(m) for m in ctx.spec["analysis"]["models"]}
    rows = _sparsity_rows(ctx, finding.dataset, "all")
    rows = rows.loc[[(a, m) in models for a, m in zip(rows["arch"], rows["method"],
                                                       strict=True)]]
    rows = rows.dropna(subset=[column])
    if rows.empty:
        return finding.skip(f"not run: sparsity.csv has no analysed model on {finding.dataset}")
    finding.note(None, f"sparsity column: {column}")
    values = {(finding.dataset, a, m): float(v)
              for a, m, v in zip(rows["arch"], rows["method"], rows[column], strict=True)}
    groups = _category_groups(ctx, values, [TRANSFORMER, CNN])
    part_a = None
    if groups[TRANSFORMER] and groups[CNN]:
        t, c = ([values[k] for k in groups[g]] for g in (TRANSFORMER, CNN))
        part_a = st.Part("sparsity: Transformer − CNN", float(np.mean(t) - np.mean(c)),
                         f"Mann–Whitney U exact ({len(t)} vs {len(c)})",
                         p_value=st.mann_whitney(t, c), n=len(t) + len(c))
        finding.note(None, "sparsity (%): " + ", ".join(
            f"{display_name(k[1])} ({ctx.category(k[1])}) {_pct(v)}" for k, v in values.items()))
    for protocol in PROTOCOLS:
        keys = [k for k in values if ctx.results.has(k, protocol.worst)]
        part_b = None
        if len(keys) >= 3:
            x = [values[k] for k in keys]
            worst = [ctx.results.vector(k, protocol.worst).mean() for k in keys]
            rho, p = st.spearman_permutation_test(x, worst)
            boot = ctx.evidence.trend(keys, x, protocol.worst, "")
            part_b = st.Part(f"ρ(sparsity, {label(protocol.worst)})", rho,
                             f"Spearman ρ, permutation test over {len(keys)} models",
                             ci=boot.ci if boot else None, p_value=p, unit="", n=len(keys))
        finding.add(protocol.name, [part_a, part_b],
                    "not run: needs Transformer and CNN models, or 3 models with a worst case")
    return finding


FIGURE2_COMPONENTS = ("conv", "qkv", "ffn")
RULE_F9 = ("Every analysed adversarially trained CoAtNet model with convolution, QKV and "
           "feed-forward weights (sparsity.csv per component; the trained-only column where "
           "present). Parts per model: QKV − FFN > 0, QKV − convolution > 0, convolution − FFN "
           "< 0 in sparsity; two-sided two-proportion z-test on the counts of sparse weights "
           "(a component's weights taken as draws from its weight distribution: one training "
           "run per model, so seed-to-seed variation is not captured). Protocol-independent.")


def _component_counts(row: pd.Series, column: str) -> tuple[int, int]:
    """(sparse weights, weights) of a sparsity.csv row for ``column``."""
    if column == "sparsity":
        return int(row["sparse"]), int(row["weights"])
    n = int(row["weights_trained"]) if "weights_trained" in row.index else int(row["weights"])
    return int(round(float(row[column]) * n)), n


def finding_coatnet_components(ctx: Context) -> Finding:
    finding = Finding("F9", "In CoAtNet, QKV weights are the sparsest and convolutions the "
                      "least sparse.", "Figure 2", RULE_F9, ctx.spec["analysis"]["dataset"],
                      protocol_independent=True)
    if ctx.sparsity is None or not _at_methods(ctx):
        return finding.skip("not run: no sparsity analysis of adversarially trained models")
    column = sparsity_column(ctx.sparsity)
    frame = ctx.sparsity
    frame = frame[(frame["dataset"] == finding.dataset) & frame["method"].isin(_at_methods(ctx))
                  & (frame["arch"].str.partition("-")[0] == "coatnet")]
    parts = []
    for (arch, method), rows in frame.groupby(["arch", "method"], sort=False):
        rows = rows.set_index("component")
        if not all(c in rows.index and rows.loc[c, "weights"] > 0 for c in FIGURE2_COMPONENTS):
            finding.note(None, f"{display_name(arch)} ({method}): lacks one of "
                         f"{', '.join(FIGURE2_COMPONENTS)}; left out")
            continue
        counts = {c: _component_counts(rows.loc[c], column) for c in FIGURE2_COMPONENTS}
        for first, second, direction in (("qkv", "ffn", 1), ("qkv", "conv", 1),
                                         ("conv", "ffn", -1)):
            (k1, n1), (k2, n2) = counts[first], counts[second]
            parts.append(st.Part(f"{display_name(arch)}: {first} − {second}",
                                 k1 / n1 - k2 / n2, "two-proportion z-test",
                                 direction=direction,
                                 p_value=st.two_proportion_test(k1, n1, k2, n2), n=n1 + n2))
        finding.note(None, f"{display_name(arch)} sparsity (%) [{column}]: " + ", ".join(
            f"{c} {_pct(counts[c][0] / counts[c][1])}" for c in FIGURE2_COMPONENTS))
    for protocol in PROTOCOLS:
        finding.add(protocol.name, parts, "not run: no analysed CoAtNet model with "
                    "convolution, QKV and feed-forward weights")
    return finding


RULE_F10 = ("landscape.csv's sharpness (mean loss increase over the perturbation grid). Parts: "
            "ResNet: sharpness(PGD-ℓ∞) − sharpness(vanilla) > 0; PVTv2: < 0. Each sharpness is "
            "one number per model (a mean over analysis.landscape.samples fixed training "
            "samples), with no per-sample record: no test; the sign decides (equal: undecided). "
            "Protocol-independent.")


def finding_landscape(ctx: Context) -> Finding:
    finding = Finding("F10", "Adversarial training sharpens ResNet's weight loss landscape and "
                      "flattens PVTv2's.", "Figure 4", RULE_F10, ctx.spec["analysis"]["dataset"],
                      protocol_independent=True)
    if ctx.landscape is None:
        return finding.skip("not run: no loss-landscape analysis")
    frame = ctx.landscape[ctx.landscape["dataset"] == finding.dataset]
    sharp = {(a, m): float(v) for a, m, v in zip(frame["arch"], frame["method"],
                                                  frame["sharpness"], strict=True)}
    needed = [(a, m) for a in ("resnet", "pvtv2") for m in ("vanilla", AT)]
    missing = [f"{display_name(a)} {m}" for a, m in needed if (a, m) not in sharp]
    if missing:
        return finding.skip(f"not run: no landscape of {', '.join(missing)} on "
                            f"{finding.dataset} (analysis.landscape.figure4)")
    parts = [st.Part(f"{display_name(a)}: PGD-ℓ∞ − vanilla sharpness",
                     sharp[(a, AT)] - sharp[(a, "vanilla")], "none (one number per model)",
                     kind=st.SIGN, direction=d, unit="")
             for a, d in (("resnet", 1), ("pvtv2", -1))]
    finding.note(None, "sharpness: " + ", ".join(f"{display_name(a)} {m} {sharp[(a, m)]:.4g}"
                                                 for a, m in needed))
    for protocol in PROTOCOLS:
        finding.add(protocol.name, parts, "")
    return finding


RULE_F11 = ("Table 4 (on CIFAR-10 where it is run, else the first dataset of the study). Per "
            "architecture with vanilla and PGD-ℓ∞ models: Δclean = clean(AT) − clean(vanilla), "
            "ΔC = C(AT) − C(vanilla), C the mean accuracy over corruptions × severities. Parts: "
            "mean CNN Δ − mean Transformer Δ > 0 for Δclean and for ΔC; paired bootstrap over "
            "test samples (a sample's C: its mean over corruptions × severities). "
            "Protocol-independent.")


def finding_corruptions(ctx: Context) -> Finding:
    finding = Finding("F11", "On CIFAR-10, CNNs lose less clean accuracy and keep more "
                      "corruption accuracy under adversarial training.", "Table 4", RULE_F11,
                      protocol_independent=True)
    spec = ctx.spec.get("corruptions")
    if not spec or not spec["datasets"]:
        return finding.skip("not run: studies.corruptions is not configured")
    dataset = finding.dataset = "cifar10" if "cifar10" in spec["datasets"] else spec["datasets"][0]
    archs = [a for a in spec["architectures"]
             if all(ctx.results.has((dataset, a, m), c) for m in ("vanilla", AT)
                    for c in ("clean", "corruptions"))]
    groups = {g: [a for a in archs if ctx.category(a) == g] for g in (CNN, TRANSFORMER)}
    if not groups[CNN] or not groups[TRANSFORMER]:
        return finding.skip(f"not run: needs vanilla and PGD-ℓ∞ models of a CNN and a "
                            f"Transformer with corruption outcomes on {dataset}")
    weights = {}
    for group, sign in ((CNN, 1), (TRANSFORMER, -1)):
        for a in groups[group]:
            weights[(dataset, a, AT)] = sign / len(groups[group])
            weights[(dataset, a, "vanilla")] = -sign / len(groups[group])
    parts = [ctx.evidence.contrast(weights, column, f"CNN − Transformer, Δ{name}")
             for column, name in (("clean", "clean"), ("corruptions", "C"))]
    for column in ("clean", "corruptions"):
        finding.note(None, f"{label(column)} (%), vanilla → AT: " + ", ".join(
            f"{display_name(a)} ({ctx.category(a)}) "
            f"{_pct(ctx.results.vector((dataset, a, 'vanilla'), column).mean())} → "
            f"{_pct(ctx.results.vector((dataset, a, AT), column).mean())}"
            for a in groups[CNN] + groups[TRANSFORMER]))
    for protocol in PROTOCOLS:
        finding.add(protocol.name, parts, "not run: no corruption outcomes")
    return finding


FINDINGS: tuple[Callable[[Context], Finding], ...] = (
    finding_most_robust, finding_cnn_vs_transformer, finding_coatnet_layouts, finding_patch_size,
    finding_activation, finding_trades, finding_l1_penalty, finding_sparsity,
    finding_coatnet_components, finding_landscape, finding_corruptions)


# ---------------------------------------------------------------------------------------------
# Cells and rank correlations


@dataclass(frozen=True)
class CellSpec:
    """One reproduced cell: a model's column, and the paper's number (None: it has none)."""

    table: str
    dataset: str
    row: str
    column: str
    key: Key
    outcome: str
    paper: float | None


TABLE1_COLUMNS = ["vanilla_acc", "clean_acc", *PAPER_ATTACKS, "worst_case"]


def _model_column(dataset: str, arch: str, column: str) -> tuple[Key, str]:
    """The model and outcome column of a Table 1–3 column."""
    if column == "vanilla_acc":
        return (dataset, arch, "vanilla"), "clean"
    return (dataset, arch, AT), "clean" if column == "clean_acc" else column


def _paper_lookup(name: str, keys: Sequence[str]) -> dict[tuple, Mapping[str, Any]]:
    table = paper_table(name)
    return {tuple(row[k] for k in keys): row for row in table.to_dict("records")}


def _table_specs(table: str, dataset: str, rows: Sequence[tuple[str, str, tuple]],
                 paper: tuple[str, list[str]] | None, methods: Sequence[str] = ("vanilla", AT)
                 ) -> list[CellSpec]:
    """Cells of a Table 1–3 layout: ``rows`` are (row label, arch, paper key); the vanilla
    column only where the table's ``methods`` train vanilla models."""
    published = _paper_lookup(*paper) if paper and dataset == PAPER_DATASETS[table] else {}
    columns = [c for c in TABLE1_COLUMNS if c != "vanilla_acc" or "vanilla" in methods]
    specs = []
    for row_label, arch, paper_key in rows:
        published_row = published.get(paper_key, {})
        for column in columns:
            key, outcome = _model_column(dataset, arch, column)
            value = published_row.get(column)
            specs.append(CellSpec(table, dataset, row_label, column, key, outcome,
                                  None if value is None or pd.isna(value) else float(value)))
    return specs


def cell_specs(spec: Mapping[str, Any]) -> dict[str, list[CellSpec]]:
    """Every reproduced table's cells, by table name."""
    tables = {}
    dataset = spec["dataset"]
    archs = sorted(spec["architectures"], key=paper_order)
    tables["table1"] = _table_specs("table1", dataset, [(display_name(a), a, (display_name(a),))
                                                        for a in archs],
                                    ("table1_cifar10", ["architecture"]))
    layouts = spec["studies"].get("coatnet_layouts")
    if layouts:
        rows = [(f"CoAtNet-{coatnet_layout(a)}", a, (f"CoAtNet-{coatnet_layout(a)}",
                                                     coatnet_layout(a)))
                for a in layouts["architectures"]]
        tables["table2"] = _table_specs("table2", layouts["dataset"], rows,
                                        ("table2_coatnet_stages", ["architecture", "stages"]),
                                        layouts["methods"])
    patches = spec["studies"].get("patch_size")
    if patches:
        rows = []
        for a in patches["architectures"]:
            name = display_name(a.partition("-")[0])
            try:
                size = patch_size(a)
            except ValueError:
                continue  # F4 says so
            rows.append((f"{name} p{size}", a, (name, size)))
        tables["table3"] = _table_specs("table3", patches["dataset"], rows,
                                        ("table3_patch_size", ["architecture", "patch_size"]),
                                        patches["methods"])
    if spec.get("corruptions"):
        tables["table4"] = _table4_specs(spec["corruptions"])
    return tables


TABLE4_CELLS = {"vanilla_acc": ("vanilla", "clean"), "vanilla_c_acc": ("vanilla", "corruptions"),
                "at_clean_acc": (AT, "clean"), "at_c_acc": (AT, "corruptions")}


def _table4_specs(spec: Mapping[str, Any]) -> list[CellSpec]:
    published = _paper_lookup("table4_corruptions", ["architecture"])
    specs = []
    for dataset in spec["datasets"]:
        for arch in sorted(spec["architectures"], key=paper_order):
            row = published.get((display_name(arch),), {})
            for column, (method, outcome) in TABLE4_CELLS.items():
                value = row.get(f"{dataset}_{column}")
                specs.append(CellSpec("table4", dataset, display_name(arch), column,
                                      (dataset, arch, method), outcome,
                                      None if value is None or pd.isna(value) else float(value)))
    return specs


def cell_rows(evidence: Evidence, specs: Iterable[CellSpec]) -> list[dict[str, Any]]:
    """Ours (%) with its 95 % interval, the paper's number and the difference, per cell run."""
    rows = []
    for spec in specs:
        cell = evidence.cell(spec.key, spec.outcome)
        if cell is None:
            continue
        ours, low, high = (100 * cell[k] for k in ("estimate", "low", "high"))
        paper = spec.paper
        rows.append({
            "table": spec.table, "dataset": spec.dataset, "row": spec.row,
            "column": spec.column, "estimate": ours, "ci_low": low, "ci_high": high,
            "n": cell["n"], "interval": cell["interval"], "paper": paper,
            "difference": None if paper is None else ours - paper,
            "difference_low": None if paper is None else low - paper,
            "difference_high": None if paper is None else high - paper,
            "paper_in_ci": None if paper is None else bool(low <= paper <= high)})
    return rows


def rank_correlations(evidence: Evidence, tables: Mapping[str, Sequence[CellSpec]]
                      ) -> list[dict[str, Any]]:
    """Per table and column with the paper's numbers: ρ and τ between our accuracies and the
    paper's over the rows with both, under the paper protocol (the same column) and, for
    attack columns, the strong protocol (our strong column vs the paper's counterpart)."""
    rows = []
    for table, specs in tables.items():
        for (dataset, column), group in _by_column(specs).items():
            cells = [s for s in group if s.paper is not None
                     and evidence.results.has(s.key, s.outcome)]
            free = table == "table4" or column in ("vanilla_acc", "clean_acc")
            variants = [("both" if free else "paper", column, cells, None)]
            strong = {v: k for k, v in STRONG_COUNTERPART.items()}.get(column)
            if strong and table != "table4":
                variants.append(("strong", strong, [s for s in cells if evidence.results.has(
                    s.key, strong)], strong))
            for protocol, shown, members, outcome in variants:
                if len(members) < 3:
                    continue
                result = evidence.correlation_with(
                    [(s.key, outcome or s.outcome) for s in members], [s.paper for s in members])
                if result is not None:
                    rows.append({"table": table, "dataset": dataset, "column": shown,
                                 "paper_column": column, "protocol": protocol, **result})
    return rows


def _by_column(specs: Iterable[CellSpec]) -> dict[tuple[str, str], list[CellSpec]]:
    groups: dict[tuple[str, str], list[CellSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.dataset, spec.column), []).append(spec)
    return groups


# ---------------------------------------------------------------------------------------------
# The scorecard


@dataclass
class Scorecard:
    spec: Mapping[str, Any]
    findings: list[Finding]
    cells: list[dict[str, Any]]
    correlations: list[dict[str, Any]]
    tables: Mapping[str, Sequence[CellSpec]]
    notes: list[str]
    bootstrap: st.PairedBootstrap


def build_scorecard(spec: Mapping[str, Any], results: Results, *,
                    sparsity: pd.DataFrame | None = None, landscape: pd.DataFrame | None = None,
                    bootstrap: st.PairedBootstrap | None = None) -> Scorecard:
    """The scorecard of a run.

    ``spec`` describes what the workflow configured: ``dataset`` (report.table1_dataset),
    ``architectures`` (run.architectures), ``studies`` (the studies' sections: dataset,
    architectures, methods; l1_penalty: architecture, lambdas), ``corruptions`` (datasets,
    architectures, methods, or None), ``analysis`` (dataset, models: [arch, method] rows of the
    analysis table), ``categories`` (architecture → CNN/Transformer/Hybrid).
    """
    evidence = Evidence(results, bootstrap)
    ctx = Context(spec, evidence, sparsity, landscape)
    findings = [check(ctx) for check in FINDINGS]
    tables = cell_specs(spec)
    cells = [row for specs in tables.values() for row in cell_rows(evidence, specs)]
    correlations = rank_correlations(evidence, tables)
    return Scorecard(spec, findings, cells, correlations, tables, sorted(evidence.notes),
                     evidence.bootstrap)


def verdict_counts(card: Scorecard) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for protocol in PROTOCOLS:
        tally = counts.setdefault(protocol.name, {})
        for finding in card.findings:
            verdict = finding.verdict(protocol.name)
            tally[verdict] = tally.get(verdict, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------
# Rendering: CSV (long, one `section` column), Markdown, LaTeX


CSV_COLUMNS = ["section", "finding", "protocol", "table", "dataset", "row", "column",
               "estimate", "ci_low", "ci_high", "paper", "difference", "difference_low",
               "difference_high", "paper_in_ci", "statistic", "test", "p_value", "p_holm", "n",
               "verdict", "detail"]


def _scaled(part: st.Part) -> tuple[float | None, float | None, float | None]:
    scale = 100 if part.unit == "pp" else 1
    low, high = part.ci if part.ci else (None, None)
    return (part.estimate * scale, None if low is None else low * scale,
            None if high is None else high * scale)


def scorecard_frame(card: Scorecard) -> pd.DataFrame:
    rows = []
    for finding in card.findings:
        for protocol in PROTOCOLS:
            rows.append({"section": "finding", "finding": finding.id,
                         "protocol": protocol.name, "dataset": finding.dataset,
                         "verdict": finding.verdict(protocol.name),
                         "detail": finding.not_run.get(protocol.name, finding.claim)})
            for part in finding.parts.get(protocol.name, []):
                estimate, low, high = _scaled(part)
                rows.append({"section": "finding_part", "finding": finding.id,
                             "protocol": protocol.name, "dataset": finding.dataset,
                             "row": part.description, "estimate": estimate, "ci_low": low,
                             "ci_high": high, "statistic": part.unit or "value",
                             "test": part.test, "p_value": part.p_value, "p_holm": part.p_holm,
                             "n": part.n, "verdict": part.verdict if part.role == "test"
                             else "evidence"})
    for corr in card.correlations:
        for statistic in ("spearman", "kendall"):
            low, high = corr[f"{statistic}_ci"]
            rows.append({"section": "rank_correlation", "protocol": corr["protocol"],
                         "table": corr["table"], "dataset": corr["dataset"],
                         "column": corr["column"], "statistic": statistic,
                         "estimate": corr[statistic], "ci_low": low, "ci_high": high,
                         "n": corr["n"], "detail": f"vs paper {corr['paper_column']}"})
    for cell in card.cells:
        rows.append({"section": "cell", "statistic": "accuracy (%)", "test": cell["interval"],
                     **{k: cell[k] for k in ("table", "dataset", "row", "column", "estimate",
                                             "ci_low", "ci_high", "paper", "difference",
                                             "difference_low", "difference_high",
                                             "paper_in_ci", "n")}})
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def _num(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _interval(low: float | None, high: float | None, digits: int = 2) -> str:
    if low is None or high is None:
        return "–"
    return f"[{_num(low, digits)}, {_num(high, digits)}]"


def _part_cells(part: st.Part) -> list[str]:
    estimate, low, high = _scaled(part)
    digits = 2 if part.unit == "pp" else 3
    unit = " pp" if part.unit == "pp" else ""
    return [part.description, f"{_num(estimate, digits)}{unit}", _interval(low, high, digits),
            part.test, _p(part.p_value), _p(part.p_holm),
            part.verdict if part.role == "test" else "(evidence)"]


PART_HEADERS = ["Part", "Estimate", "95 % CI", "Test", "p", "Holm p", "Verdict"]
CELL_HEADERS = ["Row", "Column", "Ours (%)", "95 % CI", "Paper (%)", "Ours − paper (pp)",
                "95 % CI", "Paper in CI"]


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    def clean(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return lines + [""]


def method_text(card: Scorecard) -> list[str]:
    boot = card.bootstrap
    return [
        f"- α = {st.ALPHA}, 95 % intervals. A single accuracy: Wilson's interval on its "
        "per-sample 0/1 outcomes (the worst case: on the per-sample AND over the attacks "
        "summary.json lists); a corruption accuracy (a per-sample mean over corruptions × "
        "severities): the bootstrap percentile interval.",
        f"- Paired bootstrap: {boot.samples} resamples of the test samples (seed {boot.seed}), "
        "the same indices for every model; percentile intervals; two-sided p = 2·min(share of "
        "replicates ≤ 0, share ≥ 0), each with the +1 of a Monte Carlo p-value.",
        f"- Two models: McNemar's test on the samples exactly one of them gets right (exact "
        f"binomial below {st.EXACT_MCNEMAR_BELOW} such samples, else χ² with continuity "
        "correction); the difference's interval from the paired bootstrap.",
        "- Groups (e.g. the mean accuracy of the CNNs minus that of the Transformers): a "
        "per-sample combination of the models' outcomes, paired bootstrap. The architectures "
        "are fixed: these intervals are the evaluation's sampling error, not that of drawing "
        "other architectures or training seeds.",
        "- A part of a finding *holds* if its two-sided test is significant at α in the claimed "
        "direction; it *does not hold* if significant in the opposite direction after Holm's "
        "correction over the finding's parts; otherwise it is *undecided at this sample size*. "
        "A finding holds if every part holds (intersection–union: no correction needed), does "
        "not hold if any part does not hold, is undecided otherwise, and is *not run* when its "
        "inputs were not run (not an error). Parts marked (evidence) are shown, not counted.",
        "- The paper protocol reads the paper's attacks and worst_case; the strong protocol, "
        "per norm, the sample-wise worst case over every attack of that norm a model was "
        "evaluated with (paper's and strong's, so never above the paper's), and "
        "worst_case_all. Findings without attacks (F9–F11) get the same verdict under both.",
        "- Rank correlations: ρ and τ-b between our accuracies and the paper's over the rows "
        "both have (at least 3); the interval recomputes our accuracies on each resample, the "
        "paper's numbers fixed. It shows how much our ranking depends on the test samples. "
        "Where architectures nearly tie, resampling scrambles their order, so the resampled ρ "
        "lies below the estimate (the estimate can even lie above the interval) and the "
        "interval is to be read as 'the ranking is not resolved' rather than as covering a "
        "true ρ; where they are separated by more than their sampling error it covers the "
        "ρ of the true accuracies (tests/test_scorecard.py simulates both).",
    ]


def _fmt_cell(cell: Mapping[str, Any]) -> list[str]:
    paper = cell["paper"]
    return [cell["row"], label(cell["column"]), _num(cell["estimate"]),
            _interval(cell["ci_low"], cell["ci_high"]), _num(paper),
            _num(cell["difference"]),
            _interval(cell["difference_low"], cell["difference_high"]),
            "–" if paper is None else ("yes" if cell["paper_in_ci"] else "no")]


TABLE_TITLES = {"table1": "Table 1", "table2": "Table 2 (CoAtNet layouts)",
                "table3": "Table 3 (patch size)", "table4": "Table 4 (corruptions)"}


def _paper_note(table: str, dataset: str) -> str | None:
    if table == "table4":
        if dataset not in TABLE4_PAPER_DATASETS:
            return (f"{dataset}: the paper has no Table 4 numbers for it (CIFAR-10 and "
                    "ImageNette only); ours only.")
        return None
    if dataset != PAPER_DATASETS[table]:
        return (f"{dataset}: the paper's numbers are for CIFAR-10; no cell-by-cell comparison "
                "(ours only).")
    return None


def to_markdown(card: Scorecard) -> str:
    spec = card.spec
    counts = verdict_counts(card)
    lines = ["# Reproduction scorecard", "",
             f"Dataset: **{spec['dataset']}** (report.table1_dataset); the studies' datasets "
             "are given per finding. Did we reproduce the paper, and do its conclusions hold? "
             "Every number below is computed from the per-sample outcomes "
             "(eval/*.parquet); accuracies and their differences are in percent / percentage "
             "points (pp).", ""]
    for protocol, tally in counts.items():
        lines.append(f"- {protocol} protocol: " + ", ".join(f"{v}: {n}" for v, n in
                                                            sorted(tally.items())))
    lines += ["", "## Summary of verdicts", ""]
    lines += _md_table(["#", "Finding", "Source", "Dataset", "Paper protocol",
                        "Strong protocol"],
                       [[f.id, f.claim, f.source, f.dataset or "–", f.verdict("paper"),
                         f.verdict("strong")] for f in card.findings])
    lines += ["## How a verdict is reached", "", *method_text(card), ""]
    if card.notes:
        lines += ["Notes:", "", *[f"- {n}" for n in card.notes], ""]
    lines += ["## Findings", ""]
    for finding in card.findings:
        lines += _finding_markdown(finding)
    lines += ["## Rank correlations with the paper", ""]
    if card.correlations:
        lines += _md_table(["Table", "Dataset", "Column", "Protocol", "vs paper", "n",
                            "Spearman ρ", "95 % CI", "Kendall τ", "95 % CI"],
                           [[TABLE_TITLES[c["table"]], c["dataset"], label(c["column"]),
                             c["protocol"], label(c["paper_column"]), str(c["n"]),
                             _num(c["spearman"], 3), _interval(*c["spearman_ci"], 3),
                             _num(c["kendall"], 3), _interval(*c["kendall_ci"], 3)]
                            for c in card.correlations])
    else:
        lines += ["Not applicable: no table of this run has the paper's numbers for at least 3 "
                  "of its rows (the paper's are for CIFAR-10, and ImageNette in Table 4).", ""]
    lines += ["## Cell by cell", ""]
    lines += _cells_markdown(card)
    return "\n".join(lines)


def _finding_markdown(finding: Finding) -> list[str]:
    lines = [f"### {finding.id}. {finding.claim}", "",
             f"Source: {finding.source}; dataset: {finding.dataset or '–'}. "
             f"Verdict: paper protocol **{finding.verdict('paper')}**, strong protocol "
             f"**{finding.verdict('strong')}**.", "", f"Rule: {finding.rule}", ""]
    protocols = [PAPER] if finding.protocol_independent else list(PROTOCOLS)
    for protocol in protocols:
        heading = "Both protocols" if finding.protocol_independent else \
            f"{protocol.name.capitalize()} protocol"
        lines.append(f"**{heading}**: {finding.verdict(protocol.name)}.")
        lines.append("")
        if protocol.name in finding.not_run:
            lines += [finding.not_run[protocol.name].capitalize() + ".", ""]
        parts = finding.parts.get(protocol.name, [])
        if parts:
            lines += _md_table(PART_HEADERS, [_part_cells(p) for p in parts])
        evidence = finding.evidence.get(protocol.name, [])
        lines += [f"- {line}" for line in evidence] + ([""] if evidence else [])
    return lines


def _cells_markdown(card: Scorecard) -> list[str]:
    lines = []
    by_table: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in card.cells:
        by_table.setdefault((cell["table"], cell["dataset"]), []).append(cell)
    for table, specs in card.tables.items():
        for dataset in dict.fromkeys(s.dataset for s in specs):
            lines += [f"### {TABLE_TITLES[table]}, {dataset}", ""]
            note = _paper_note(table, dataset)
            if note:
                lines += [note, ""]
            cells = by_table.get((table, dataset), [])
            if cells:
                lines += _md_table(CELL_HEADERS, [_fmt_cell(c) for c in cells])
            else:
                lines += ["No model of this table was run.", ""]
    skipped = [t for t in ("table2", "table3", "table4") if t not in card.tables]
    if skipped:
        lines += ["Not configured: " + ", ".join(TABLE_TITLES[t] for t in skipped) + ".", ""]
    lines += ["The activation and TRADES tables (the paper's supplement) have no published "
              "numbers in this package; they enter the findings F5 and F6 only.", ""]
    return lines


# LaTeX: text is escaped, and the few non-ASCII characters the scorecard writes become math.
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "|": r"\textbar{}"}
_LATEX_UNICODE = {"ℓ": r"$\ell$", "∞": r"$\infty$", "ρ": r"$\rho$", "τ": r"$\tau$",
                  "α": r"$\alpha$", "λ": r"$\lambda$", "Δ": r"$\Delta$", "χ": r"$\chi$",
                  "²": r"$^2$", "×": r"$\times$", "−": r"$-$", "–": "--", "—": "---",
                  "≥": r"$\geq$", "≤": r"$\leq$", "→": r"$\to$", "·": r"$\cdot$",
                  "Σ": r"$\Sigma$", "…": r"\ldots{}", "±": r"$\pm$"}


def latex_escape(text: Any) -> str:
    out = []
    for char in str(text):
        if char in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[char])
        elif char in _LATEX_UNICODE:
            out.append(_LATEX_UNICODE[char])
        elif ord(char) < 128:
            out.append(char)
        else:
            out.append("?")  # a character pdflatex cannot typeset without extra packages
    return "".join(out)


def _heading(text: str) -> str:
    """A bold heading on its own line (a run-in \\paragraph would share its line with the
    table after it)."""
    return r"\par\medskip\noindent\textbf{" + latex_escape(text) + r"}\par\smallskip"


TEX_COLUMNS = 4  # accuracy columns per cell tabular
TEX_ROWS = 40  # rows per tabular: a tabular cannot break across pages, a sequence of them can


def _tabular(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """Booktabs tabulars in \\scriptsize, at most :data:`TEX_ROWS` rows each (the header
    repeated)."""
    lines = []
    for start in range(0, max(len(rows), 1), TEX_ROWS):
        lines += [r"{\scriptsize\setlength{\tabcolsep}{3pt}",
                  rf"\begin{{tabular}}{{{align}}}", r"\toprule",
                  " & ".join(latex_escape(h) for h in headers) + r" \\", r"\midrule"]
        lines += [" & ".join(latex_escape(c) for c in row) + r" \\"
                  for row in rows[start:start + TEX_ROWS]]
        lines += [r"\bottomrule", r"\end{tabular}", "}", "", r"\medskip", ""]
    return lines


def to_latex(card: Scorecard) -> str:
    """Booktabs tables (needs booktabs and amsmath): the verdicts, the findings' parts, the rank
    correlations, and each table's cells (ours, and ours − paper where the paper has it)."""
    lines = ["% Reproduction scorecard (results/scorecard.md has the rules and the evidence)",
             _heading("Reproduction scorecard: verdicts"),
             latex_escape(f"Dataset {card.spec['dataset']}; α = {st.ALPHA}; paired bootstrap "
                          f"over test samples ({card.bootstrap.samples} resamples).") + r"\par",
             ""]
    lines += _tabular(["", "Finding", "Source", "Paper", "Strong"],
                      [[f.id, f.claim, f.source, f.verdict("paper"), f.verdict("strong")]
                       for f in card.findings], "lp{0.45\\linewidth}p{0.15\\linewidth}ll")
    # the parts, estimate and interval in one column, without the test (scorecard.md and
    # .csv name each test)
    part_rows = []
    for f in card.findings:
        for p in [PAPER] if f.protocol_independent else PROTOCOLS:
            for part in f.parts.get(p.name, []):
                name, estimate, ci, _, p_value, p_holm, verdict = _part_cells(part)
                part_rows.append([f.id, "both" if f.protocol_independent else p.name, name,
                                  f"{estimate} {ci}", p_value, p_holm, verdict])
    if part_rows:
        lines += [_heading("Findings: parts"), ""]
        lines += _tabular(["", "Protocol", "Part", "Estimate [95 % CI]", "p", "Holm p",
                           "Verdict"], part_rows, "llp{0.3\\linewidth}lrrl")
    if card.correlations:
        lines += [_heading("Rank correlations with the paper"), ""]
        lines += _tabular(["Table", "Column", "Protocol", "n", "Spearman ρ", "95 % CI",
                           "Kendall τ", "95 % CI"],
                          [[f"{TABLE_TITLES[c['table']].split(' (')[0]} ({c['dataset']})",
                            label(c["column"]), c["protocol"], str(c["n"]),
                            _num(c["spearman"], 3), _interval(*c["spearman_ci"], 3),
                            _num(c["kendall"], 3), _interval(*c["kendall_ci"], 3)]
                           for c in card.correlations], "lllrrlrl")
    lines += _cells_latex(card)
    return "\n".join(lines) + "\n"


def _cells_latex(card: Scorecard) -> list[str]:
    """One wide table per reproduced table and dataset: ours (ours − paper), * where the
    paper's number is outside our 95 % interval."""
    lines = []
    for (table, dataset), cells in _group_cells(card.cells).items():
        columns = list(dict.fromkeys(c["column"] for c in cells))
        rows: dict[str, dict[str, str]] = {}
        for c in cells:
            text = _num(c["estimate"])
            if c["paper"] is not None:
                star = "" if c["paper_in_ci"] else "*"
                text += f" ({c['difference']:+.2f}{star})"
            rows.setdefault(c["row"], {})[c["column"]] = text
        caption = (f"{TABLE_TITLES[table]}, {dataset}: our accuracy (%)" +
                   ("; in parentheses ours − paper (pp), * the paper's number outside our 95 % "
                    "interval" if any(c["paper"] is not None for c in cells) else
                    " (no published numbers)"))
        lines += [_heading(caption), ""]
        for start in range(0, len(columns), TEX_COLUMNS):  # a page's width at a time
            shown = columns[start:start + TEX_COLUMNS]
            lines += _tabular(["", *[label(c) for c in shown]],
                              [[row, *[values.get(c, "–") for c in shown]]
                               for row, values in rows.items()], "l" + "r" * len(shown))
    return lines


def _group_cells(cells: Iterable[Mapping[str, Any]]
                 ) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for cell in cells:
        groups.setdefault((cell["table"], cell["dataset"]), []).append(cell)
    return groups


def summary_text(card: Scorecard) -> str:
    """One line per finding, for the job's log."""
    return "\n".join(f"{f.id}: paper {f.verdict('paper')}, strong {f.verdict('strong')}"
                     for f in card.findings)
