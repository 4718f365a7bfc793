"""The issue's speed goals, checked against the records of a run."""

from __future__ import annotations

from typing import Any

from robustarch.bench.records import Record

# (record, minimum ratio, also require our robust accuracy <= the reference's, description)
GOALS: tuple[tuple[str, float, bool, str], ...] = (
    ("train", 1.3, False, "adversarial training loop >= 1.3x the conventional loop"),
    ("attack_pgd_linf", 1.0, True, "PGD-linf at least as fast as torchattacks, not weaker"),
    ("attack_pgd_l2", 1.0, True, "PGD-l2 at least as fast as torchattacks, not weaker"),
    ("attack_pgd_l1", 3.0, False, "PGD-l1 >= 3x ART's norm-1 PGD"),
    ("plan", 1.0, False, "snakemake -n plans the paper DAG in under 10 s"),
)


def check_goals(records: list[Record]) -> list[dict[str, Any]]:
    """One row per goal whose record was measured: ``met`` and the figures it rests on."""
    by_name = {r.name: r for r in records}
    rows = []
    for name, minimum, not_weaker, text in GOALS:
        record = by_name.get(name)
        if record is None:
            continue
        met = record.ratio >= minimum
        row: dict[str, Any] = {"goal": text, "record": name, "ratio": record.ratio,
                               "minimum_ratio": minimum}
        if not_weaker:
            ours = record.details.get("ours_robust_accuracy")
            reference = record.details.get("reference_robust_accuracy")
            row["not_weaker"] = ours is not None and reference is not None and ours <= reference
            met = met and row["not_weaker"]
        row["met"] = met
        rows.append(row)
    return rows
