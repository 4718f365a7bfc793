"""The issue's speed goals, checked against the records of a run."""

from __future__ import annotations

from typing import Any

from robustarch.bench.records import Record

# How far (in robust accuracy) a re-implementation may be from the library it reproduces.
AGREEMENT = 0.02

# (record, minimum ratio, what the robust accuracies must also satisfy, description):
# "not_weaker": ours <= the reference's; "agrees": |ours - reference| <= AGREEMENT; "": nothing.
GOALS: tuple[tuple[str, float, str, str], ...] = (
    ("train", 1.3, "", "adversarial training loop >= 1.3x the conventional loop"),
    ("attack_pgd_linf", 1.0, "not_weaker", "PGD-linf at least as fast as torchattacks, not weaker"),
    ("attack_pgd_l2", 1.0, "not_weaker", "PGD-l2 at least as fast as torchattacks, not weaker"),
    ("attack_pgd_l1", 3.0, "", "PGD-l1 >= 3x ART's norm-1 PGD"),
    ("attack_paper_pgd_linf", 1.0, "agrees",
     "paper PGD-linf at least as fast as foolbox 3.0.4, robust accuracy within 2 points"),
    ("attack_paper_pgd_l2", 1.0, "agrees",
     "paper PGD-l2 at least as fast as foolbox 3.0.4, robust accuracy within 2 points"),
    ("attack_paper_pgd_l1", 1.0, "agrees",
     "paper PGD-l1 at least as fast as ART 1.16.0, robust accuracy within 2 points"),
    ("plan", 1.0, "", "snakemake -n plans the paper DAG in under 10 s"),
)


def _accuracies(record: Record) -> tuple[float | None, float | None]:
    return (record.details.get("ours_robust_accuracy"),
            record.details.get("reference_robust_accuracy"))


def check_goals(records: list[Record]) -> list[dict[str, Any]]:
    """One row per goal whose record was measured: ``met`` and the figures it rests on."""
    by_name = {r.name: r for r in records}
    rows = []
    for name, minimum, accuracy_check, text in GOALS:
        record = by_name.get(name)
        if record is None:
            continue
        met = record.ratio >= minimum
        row: dict[str, Any] = {"goal": text, "record": name, "ratio": record.ratio,
                               "minimum_ratio": minimum}
        if accuracy_check:
            ours, reference = _accuracies(record)
            known = ours is not None and reference is not None
            if accuracy_check == "not_weaker":
                row["not_weaker"] = known and ours <= reference
            else:
                row["agrees"] = known and abs(ours - reference) <= AGREEMENT
            met = met and row[accuracy_check]
        row["met"] = met
        rows.append(row)
    return rows
