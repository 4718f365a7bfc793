"""The scorecard's statistics: intervals for accuracies, paired tests on per-sample outcomes, a
paired bootstrap over test samples, rank correlations, and the rule that turns tests into a
verdict (holds / does not hold / undecided).

Every accuracy here is a mean of per-sample values: 0/1 for an attack or the clean test, the
sample-wise worst case (the AND over attacks), or a sample's mean over corruptions × severities.
All models of a dataset are evaluated on the same test samples, so comparisons are *paired*: the
bootstrap resamples test samples with one set of indices for every model, and McNemar's test
counts the samples on which exactly one of two models is right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

ALPHA = 0.05
CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0
# McNemar's test is the exact binomial test below this many discordant pairs, else the
# chi-squared test with continuity correction (Edwards), which is close to it there.
EXACT_MCNEMAR_BELOW = 25
# "GELU does not improve on ReLU": an improvement of this much (1 percentage point) or more
# must be excluded by the interval for the claim to hold.
NO_IMPROVEMENT_MARGIN = 0.01
PERMUTATIONS = 9999

HOLDS, DOES_NOT_HOLD, UNDECIDED, NOT_RUN = "holds", "does not hold", "undecided", "not run"


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes, n, confidence: float = CONFIDENCE):
    """Wilson's score interval for a binomial proportion (arrays allowed); n = 0 gives NaN."""
    k, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    z = _z(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def clopper_pearson_interval(successes, n, confidence: float = CONFIDENCE):
    """The exact (Clopper–Pearson) interval for a binomial proportion (arrays allowed)."""
    from scipy.stats import beta

    k, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    tail = (1 - confidence) / 2
    low = np.where(k > 0, beta.ppf(tail, k, n - k + 1), 0.0)
    high = np.where(k < n, beta.ppf(1 - tail, k + 1, n - k), 1.0)
    return low, high


def is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of two models on the same samples: ``a_only`` samples only A gets right,
    ``b_only`` only B; ``p_value`` two-sided."""

    a_only: int
    b_only: int
    p_value: float
    exact: bool


def mcnemar(a: np.ndarray, b: np.ndarray) -> McNemar:
    """McNemar's test on paired 0/1 outcomes (exact binomial for few discordant pairs)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"McNemar's test needs paired outcomes; got {a.shape} and {b.shape}")
    a_only, b_only = int((a & ~b).sum()), int((b & ~a).sum())
    discordant = a_only + b_only
    if discordant == 0:
        return McNemar(0, 0, 1.0, True)
    if discordant < EXACT_MCNEMAR_BELOW:
        from scipy.stats import binomtest

        return McNemar(a_only, b_only, float(binomtest(a_only, discordant, 0.5).pvalue), True)
    from scipy.stats import chi2

    statistic = (abs(a_only - b_only) - 1) ** 2 / discordant
    return McNemar(a_only, b_only, float(chi2.sf(statistic, 1)), False)


class PairedBootstrap:
    """Resampling of test samples, the same indices for every model.

    Replicate r draws n sample indices with replacement (``seed`` fixes them: every call with
    the same n sees the same replicates, so statistics computed in separate calls stay paired);
    :meth:`means` gives each row's mean over those indices.
    """

    def __init__(self, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> None:
        if samples < 100:
            raise ValueError(f"bootstrap samples must be at least 100, got {samples}")
        self.samples, self.seed = samples, seed
        self._counts: dict[int, np.ndarray] = {}

    def counts(self, n: int) -> np.ndarray:
        """(samples × n) float32: how often each test sample is drawn in each replicate."""
        if n not in self._counts:
            rng = np.random.default_rng([self.seed, n])
            counts = np.empty((self.samples, n), dtype=np.float32)
            for start in range(0, self.samples, 250):  # in blocks: bounded memory
                rows = min(250, self.samples - start)
                index = rng.integers(0, n, size=(rows, n)) + np.arange(rows)[:, None] * n
                counts[start:start + rows] = np.bincount(
                    index.ravel(), minlength=rows * n).reshape(rows, n)
            self._counts[n] = counts
        return self._counts[n]

    def means(self, matrix: np.ndarray) -> np.ndarray:
        """(samples × m): the resampled mean of each of the m rows of ``matrix`` (m × n)."""
        matrix = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
        n = matrix.shape[1]
        if n == 0:
            raise ValueError("no test samples to resample")
        # float32 products: the counts are small integers and the outcomes 0/1 (or means over
        # a few corruptions), so the sums are exact or off by ~1e-7 relative
        sums = self.counts(n) @ matrix.astype(np.float32).T
        return sums.astype(np.float64) / n


def percentile_interval(replicates: np.ndarray, confidence: float = CONFIDENCE
                        ) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(np.asarray(replicates, dtype=float), [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_p_value(replicates: np.ndarray, null: float = 0.0) -> float:
    """Two-sided bootstrap p-value of ``null``: twice the smaller share of replicates on either
    side of it (each share counted with the +1 of a valid Monte Carlo p-value), at most 1. It is
    below α exactly when the (1 − α) percentile interval excludes ``null``, up to the +1."""
    replicates = np.asarray(replicates, dtype=float)
    count = len(replicates)
    below = (1 + int((replicates <= null).sum())) / (count + 1)
    above = (1 + int((replicates >= null).sum())) / (count + 1)
    return min(1.0, 2 * min(below, above))


def _ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(values, axis=-1)


def spearman_rows(rows: np.ndarray, fixed: Sequence[float]) -> np.ndarray:
    """Spearman's ρ of each row of ``rows`` (r × m) with ``fixed`` (m), average ranks for ties.
    A row with no ranking (all equal) has ρ = 0: no association."""
    rx = _ranks(np.atleast_2d(np.asarray(rows, dtype=float)))
    ry = _ranks(np.asarray(fixed, dtype=float))
    rx = rx - rx.mean(axis=1, keepdims=True)
    ry = ry - ry.mean()
    scale = np.sqrt((rx**2).sum(axis=1) * (ry**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx @ ry) / scale
    return np.where(scale > 0, rho, 0.0)


def kendall_rows(rows: np.ndarray, fixed: Sequence[float]) -> np.ndarray:
    """Kendall's τ-b of each row of ``rows`` (r × m) with ``fixed`` (m); a row without a
    ranking has τ = 0."""
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    fixed = np.asarray(fixed, dtype=float)
    i, j = np.triu_indices(len(fixed), k=1)
    sx = np.sign(rows[:, i] - rows[:, j])
    sy = np.sign(fixed[i] - fixed[j])
    scale = np.sqrt((sx**2).sum(axis=1) * (sy**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (sx @ sy) / scale
    return np.where(scale > 0, tau, 0.0)


def kendall_pairs(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Kendall's τ-b between row r of ``first`` and row r of ``second`` (both r × m)."""
    first, second = np.atleast_2d(first), np.atleast_2d(second)
    i, j = np.triu_indices(first.shape[1], k=1)
    sx = np.sign(first[:, i] - first[:, j])
    sy = np.sign(second[:, i] - second[:, j])
    scale = np.sqrt((sx**2).sum(axis=1) * (sy**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (sx * sy).sum(axis=1) / scale
    return np.where(scale > 0, tau, 0.0)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ of two vectors (0 if either has no ranking)."""
    return float(spearman_rows(np.asarray(x, dtype=float)[None], y)[0])


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    return float(kendall_rows(np.asarray(x, dtype=float)[None], y)[0])


def spearman_permutation_test(x: Sequence[float], y: Sequence[float],
                              seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """ρ and its two-sided permutation p-value over the pairings of x and y (exact when the
    n! pairings are at most :data:`PERMUTATIONS`, else that many random ones)."""
    from scipy.stats import permutation_test

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rho = spearman(x, y)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return rho, 1.0
    def statistic(a: np.ndarray, axis: int = -1) -> np.ndarray:
        rows = np.moveaxis(np.asarray(a, dtype=float), axis, -1)
        return spearman_rows(rows.reshape(-1, rows.shape[-1]), y).reshape(rows.shape[:-1])

    result = permutation_test((x,), statistic, permutation_type="pairings", vectorized=True,
                              n_resamples=PERMUTATIONS, alternative="two-sided",
                              rng=np.random.default_rng(seed))
    return rho, float(min(1.0, result.pvalue))


def mann_whitney(first: Sequence[float], second: Sequence[float]) -> float:
    """Two-sided exact Mann–Whitney U p-value of two small samples (1 for empty/constant)."""
    from scipy.stats import mannwhitneyu

    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if len(first) == 0 or len(second) == 0 or np.ptp(np.concatenate([first, second])) == 0:
        return 1.0
    return float(mannwhitneyu(first, second, alternative="two-sided", method="exact").pvalue)


def two_proportion_test(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided pooled z-test of p1 = p2 for counts k of n (1 when undefined)."""
    from scipy.stats import norm

    if min(n1, n2) <= 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    scale = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if scale == 0:
        return 1.0
    return float(2 * norm.sf(abs(k1 / n1 - k2 / n2) / scale))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, (len(p_values) - rank) * p_values[index])
        adjusted[index] = min(1.0, running)
    return adjusted


# ---------------------------------------------------------------------------------------------
# The verdict rule


DIRECTION, NO_IMPROVEMENT, SIGN = "direction", "no_improvement", "sign"


@dataclass(frozen=True)
class Part:
    """One tested statement of a finding.

    ``kind`` DIRECTION: the claim is ``direction * estimate > 0`` (direction +1 or −1), decided
    by ``p_value`` (two-sided). NO_IMPROVEMENT: the claim is "estimate is not > 0": it holds
    when the interval's upper end is below ``margin`` and there is no significant improvement.
    SIGN: an exact quantity without sampling error (no test): its sign decides. ``role`` "test"
    parts decide the verdict, "evidence" parts are shown beside them.
    """

    description: str
    estimate: float
    test: str
    kind: str = DIRECTION
    direction: int = 1
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    p_holm: float | None = None
    margin: float | None = None
    unit: str = "pp"  # "pp": a difference of accuracies (shown ×100); "": a plain number
    role: str = "test"
    n: int | None = None

    @property
    def verdict(self) -> str:
        return part_verdict(self)


def part_verdict(part: Part, alpha: float = ALPHA) -> str:
    """holds / does not hold / undecided (see :func:`finding_verdict` for the rule)."""
    estimate = part.estimate
    if estimate is None or (isinstance(estimate, float) and math.isnan(estimate)):
        return UNDECIDED
    reverse_p = part.p_holm if part.p_holm is not None else part.p_value
    if part.kind == SIGN:
        signed = part.direction * estimate
        return HOLDS if signed > 0 else DOES_NOT_HOLD if signed < 0 else UNDECIDED
    if part.kind == NO_IMPROVEMENT:
        if estimate > 0 and reverse_p is not None and reverse_p < alpha:
            return DOES_NOT_HOLD
        if part.ci is not None and part.ci[1] < part.margin:
            return HOLDS
        return UNDECIDED
    signed = part.direction * estimate
    if part.p_value is not None and part.p_value < alpha and signed > 0:
        return HOLDS
    if reverse_p is not None and reverse_p < alpha and signed < 0:
        return DOES_NOT_HOLD
    return UNDECIDED


def with_holm(parts: Sequence[Part]) -> list[Part]:
    """The parts with Holm-adjusted p-values over the finding's tested parts."""
    tested = [i for i, p in enumerate(parts) if p.role == "test" and p.p_value is not None]
    adjusted = holm([parts[i].p_value for i in tested])
    parts = list(parts)
    for i, p in zip(tested, adjusted, strict=True):
        parts[i] = replace(parts[i], p_holm=p)
    return parts


def finding_verdict(parts: Sequence[Part]) -> str:
    """A finding's verdict from its parts (with Holm-adjusted p-values, :func:`with_holm`).

    - not run: no part could be computed;
    - does not hold: some part contradicts the claim: significant in the opposite direction at
      Holm-adjusted α (family-wise error ≤ α over the finding's parts), or an exact quantity of
      the wrong sign;
    - holds: every part holds at α (an intersection–union test: no correction is needed for
      requiring all of them);
    - undecided: otherwise (some part is not significant at this sample size).
    """
    tested = [p for p in parts if p.role == "test"]
    if not tested:
        return NOT_RUN
    verdicts = [p.verdict for p in tested]
    if DOES_NOT_HOLD in verdicts:
        return DOES_NOT_HOLD
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    return UNDECIDED
