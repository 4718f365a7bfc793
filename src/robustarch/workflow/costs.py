"""What each GPU job of the workflow costs: FLOPs from counts, seconds from a throughput.

A job's FLOPs are sums of the counted FLOPs per image of its model (``models/flops.json``,
:mod:`robustarch.models.flops`): ``F`` a forward pass, ``A`` an attack step (forward and input
gradient, eval mode), ``T`` a training step (forward and backward, train mode). Per job:

* ``train``: epochs x (train samples x (steps x A + T) + test samples x F), the last term the
  clean test pass after every epoch; TRADES adds the clean forward its attack targets and
  trains on the clean and the adversarial batch (steps x A + F + 2 T); vanilla has no attack
  (T). Epochs already checkpointed are not counted (a resumed job runs the rest).
* ``evaluate``: clean: F per sample. PGD: F (the clean check) + steps x A, with early stopping
  (the default) only on the samples still robust: the clean-correct share, of which the broken
  ones leave on average halfway. AutoAttack: each stage on the samples still robust after the
  stages before it (pyautoattack 0.2.0's loop, as :mod:`robustarch.attacks.autoattack` drives
  it): APGD (restarts x (iterations + 1) attack steps), APGD-T (per target class), FAB-T (per
  target class, an attack step and a forward per iteration), Square (its queries, forward
  only), and the driver's two forwards per stage. A resumed evaluation counts only the
  stages and batches its state file has not finished.
* ``evaluate_corruptions``: F per sample, corruption and severity.
* ``analyse_model``: the landscape's (grid^2 + 1) x samples forwards and the Lipschitz
  ascent's samples x (F + restarts x (steps x A + F)).

Who stays robust. The clean accuracy and the share of clean-correct samples each attack leaves
robust come, best first, from this run's own files: the job's AutoAttack state file
(``checkpoints/<dataset>/<arch>/<method>/<attack>.state``: the clean predictions and the stage
that broke each sample), the model's ``eval/clean.parquet`` or training ``metrics.csv``, and
the finished outcomes (``eval/<attack>.parquet`` with ``eval/clean.parquet``) and state files
of the other models of the dataset trained the same way (adversarially or not). Without them:
a prior from the paper's own results (Liu et al., CIFAR-10 Tables 1 and 2, the model's row or
the mean over the architectures): its clean accuracy; PGD leaves its PGD accuracy; AutoAttack
ends at its AA accuracy (ℓ∞; the PGD figure, an upper bound, for ℓ2 and ℓ1), and its first
stage, APGD-CE, leaves half the gap between PGD-20 and AA more (Croce & Hein 2020 find APGD-CE
alone within a few points of the full attack, stronger than PGD); vanilla models are broken
by the first stage (no standard model keeps accuracy at these budgets).

Seconds = FLOPs / achieved FLOP/s of the model's family, from a calibration file that
``python -m robustarch.bench --gpu`` writes (``docs/gpu_calibration.json``), else the model's
category there, else :data:`DEFAULT_THROUGHPUT`: assumed for an A100, see its comment.

Reading the counts imports no torch while ``models/flops.json`` is current; a stale or
incomplete table is completed by counting live (torch, seconds), with a message saying so.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from ..data.registry import dataset_spec
from ..models.catalog import model_info
from ..models.flops import FLOPS_PATH, FlopCount, read_flops
from ..report.names import display_name
from ..settings import (
    AttackKind,
    AutoAttackSettings,
    Method,
    analysis_settings,
    attack_settings,
    evaluated_attacks,
    parse_method,
    training_settings,
)

__all__ = ["CALIBRATION_FORMAT", "DEFAULT_GPU", "DEFAULT_THROUGHPUT", "GPU_RULES",
           "PER_MODEL_EVALUATION", "CostModel",
           "FlopTable", "JobCost", "Outlook", "Stage", "Throughput", "allocations",
           "autoattack_flops", "autoattack_stages", "job_precision", "load_calibration",
           "paper_prior", "runtime_minutes", "state_shares"]

CALIBRATION_FORMAT = "robustarch.gpu-calibration/1"
# The rules that run on a GPU; the others (downloads, merges, tables) cost no GPU time.
GPU_RULES = ("train", "evaluate", "evaluate_corruptions", "analyse_model")
# evaluation.jobs: per_model's rules, one per training method: evaluate_model_<method>.
PER_MODEL_EVALUATION = "evaluate_model_"

DEFAULT_GPU = "NVIDIA A100-SXM4-80GB"
# Achieved FLOP/s (counted FLOPs per second of wall time) assumed until a GPU run calibrates
# them, for an A100 (dense peaks: 19.5 TFLOP/s fp32, 156 TF32, 312 bf16) and batches of
# 32-px images. fp32 is the config's default: cuDNN runs convolutions in TF32, while torch
# keeps matrix products in full fp32 (torch.backends.cuda.matmul.allow_tf32 is off by
# default). So CNNs: 25 TFLOP/s (16 % of the TF32 peak); transformers: 7 (36 % of the fp32
# peak); hybrids in between: 10. Under bf16 autocast every family runs on the bf16 tensor
# cores: 60 (CNN, 19 %), 70 (transformer, 22 %), 60 (hybrid). Well-tuned large-model training
# reaches 40-50 % of the peak; these models are small (CIFAR-size feature maps, 64 tokens),
# so their kernels are short and the element-wise, norm and projection work between them,
# which the counts leave out, takes a larger share.
DEFAULT_THROUGHPUT: dict[str, dict[str, float]] = {
    "fp32": {"CNN": 25e12, "Transformer": 7e12, "Hybrid": 10e12},
    "bf16": {"CNN": 60e12, "Transformer": 70e12, "Hybrid": 60e12},
}

_PAPER_DATA = Path(__file__).resolve().parents[1] / "report" / "paper_data"
_PAPER_TABLES = ("table1_cifar10.csv", "table2_coatnet_stages.csv")
# pyautoattack 0.2.0's defaults (its AutoAttack.__init__ and _set_version).
_AA_ITERATIONS = 100
_AA_QUERIES_PER_ITERATION = 50  # Square's queries: 5000 = 100 x 50 (ours: iterations x 50)
_BROKEN_HALFWAY = 0.5  # a PGD sample that breaks leaves on average after this share of steps


# --------------------------------------------------------------------------- counts


class FlopTable:
    """Counted FLOPs per image by ``(arch, scale, image_size)``: the committed table while it
    is current, an entry counted live (torch) where it is stale or lacks one."""

    def __init__(self, path: Path = FLOPS_PATH, *, log=None):
        self.path = Path(path)
        self.table = read_flops(self.path)
        self.live: dict[tuple[str, str, int], FlopCount] = {}
        self.log = log or (lambda message: print(message, file=sys.stderr))

    @property
    def current(self) -> bool:
        return self.table is not None

    def __call__(self, arch: str, scale: str, image_size: int) -> FlopCount:
        key = (arch, scale, image_size)
        if self.table is not None and key in self.table:
            return self.table[key]
        if key not in self.live:
            if not self.live:
                why = ("is stale (the model sources or the counter changed since it was "
                       "written)" if self.table is None else f"has no entry for {key}")
                self.log(f"NOTE: {self.path} {why}: counting FLOPs live, which imports torch; "
                         "run `python -m robustarch.models.flops` and commit the file")
            from ..models.flops import count_architecture

            self.live[key] = count_architecture(*key)
        return self.live[key]


# --------------------------------------------------------------------------- throughput


def load_calibration(path: str | Path | None) -> dict[str, Any] | None:
    """The calibration document at ``path``, None where there is none; a file of another
    format is an error naming it."""
    if path is None or not Path(path).exists():
        return None
    data = json.loads(Path(path).read_text())
    if data.get("format") != CALIBRATION_FORMAT:
        raise ValueError(f"{path} is not a GPU calibration ({CALIBRATION_FORMAT}); write one "
                         "with `python -m robustarch.bench --gpu` or delete it")
    return data


class Throughput:
    """Achieved FLOP/s per model family and precision: calibrated, else assumed."""

    def __init__(self, calibration: Mapping[str, Any] | None = None):
        self.calibration = calibration
        self.evaluation_factor = (calibration or {}).get("evaluation_factor") or 1.0

    @property
    def source(self) -> str:
        c = self.calibration
        if c is None:
            return (f"assumed, not measured: an {DEFAULT_GPU} at the achieved FLOP/s of "
                    "robustarch.workflow.costs.DEFAULT_THROUGHPUT")
        return f"calibrated on {c['device']} ({c['measured']}, `python -m robustarch.bench --gpu`)"

    def flops_per_s(self, arch: str, precision: str, *, evaluation: bool = False) -> float:
        info = model_info(arch)
        measured = (self.calibration or {}).get("throughput", {}).get(precision, {})
        rate = (measured.get("families", {}).get(info.family)
                or measured.get("categories", {}).get(info.category)
                or DEFAULT_THROUGHPUT[precision][info.category])
        return rate * (self.evaluation_factor if evaluation else 1.0)


# --------------------------------------------------------------------------- who stays robust


@dataclass(frozen=True)
class Outlook:
    """Of an attack on a model: the share of samples classified correctly, the share of
    those still robust after the attack's first stage and at its end."""

    clean: float
    first: float
    final: float


@functools.cache
def _paper_rows() -> dict[str, dict[str, float]]:
    rows = {}
    for name in _PAPER_TABLES:
        with (_PAPER_DATA / name).open() as f:
            for row in csv.DictReader(f):
                rows[row["architecture"]] = {k: float(v) for k, v in row.items()
                                             if k not in ("architecture", "category", "stages")}
    return rows


def paper_prior(arch: str, attack: str, norm: str, adversarial: bool) -> Outlook:
    """The prior of the module docstring for ``arch`` (its paper row, else the mean row)."""
    rows = _paper_rows()
    table1 = [r for name, r in rows.items() if not name.startswith("CoAtNet-")]
    row = rows.get(display_name(arch)) or {k: fmean(r[k] for r in table1) for k in table1[0]}
    if not adversarial:
        return Outlook(clean=row["vanilla_acc"] / 100, first=0.0, final=0.0)
    pgd = row[f"pgd_{norm}"] / row["clean_acc"]
    if attack == "pgd":
        return Outlook(clean=row["clean_acc"] / 100, first=pgd, final=pgd)
    aa = row["aa_linf"] / row["clean_acc"] if norm == "linf" else pgd
    return Outlook(clean=row["clean_acc"] / 100, first=(pgd + aa) / 2, final=aa)


def _read_correct(path: Path) -> list[bool] | None:
    if not path.exists():
        return None
    import pyarrow.parquet as pq  # only where outcomes exist

    return pq.read_table(path, columns=["correct"]).column("correct").to_pylist()


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def state_shares(state: Mapping[str, Any]) -> tuple[float | None, list[float]]:
    """From an AutoAttack state: the clean share and, per finished stage, the share of the
    clean-correct samples still robust after it."""
    if not state.get("clean_done"):
        return None, []
    broken = state["broken_at"]
    correct = [b for b in broken if b != 0]
    if not correct:
        return 0.0, [0.0] * state["stage"]
    shares = [sum(b == -1 or b > s + 1 for b in correct) / len(correct)
              for s in range(state["stage"])]
    return len(correct) / len(broken), shares


def _selected_accuracy(metrics: Path, selection: str) -> float | None:
    try:
        with metrics.open() as f:
            accuracies = [float(r["test_clean_acc"]) for r in csv.DictReader(f)]
    except (OSError, KeyError, ValueError):
        return None
    if not accuracies:
        return None
    return max(accuracies) if selection == "best_clean" else accuracies[-1]


# --------------------------------------------------------------------------- AutoAttack stages


@dataclass(frozen=True)
class Stage:
    """One AutoAttack stage per sample it attacks: ``runs`` runs (restarts x target classes),
    each ``steps`` attack steps and ``forwards`` forwards (FAB's untargeted Jacobian is
    ``steps`` of one input gradient per class), plus ``setup`` forwards once."""

    name: str
    runs: int
    steps: float
    forwards: float
    setup: float

    def run_flops(self, count: FlopCount) -> float:
        return self.steps * count.attack_step + self.forwards * count.forward


def autoattack_stages(settings: AutoAttackSettings, num_classes: int) -> list[Stage]:
    """The stages of ``settings`` with pyautoattack 0.2.0's parameters (its ``_set_version``;
    ``iterations``, ``restarts``, ``target_classes`` and ``queries`` as
    :func:`robustarch.attacks.autoattack` applies them)."""
    iterations = settings.iterations or _AA_ITERATIONS
    queries = settings.queries or (settings.iterations or _AA_ITERATIONS) * (
        _AA_QUERIES_PER_ITERATION)
    l1 = settings.norm == "l1"
    names, apgd_restarts, fab_restarts, eot = {
        "standard": (("apgd-ce", "apgd-t", "fab-t", "square"), 5 if l1 else 1, 1, 1),
        "plus": (("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"), 5, 5, 1),
        "rand": (("apgd-ce", "apgd-dlr"), 1, 1, 20),
        "custom": (settings.components or (), 5, 5, 1),
    }[settings.version]
    apgd_restarts = settings.restarts or apgd_restarts
    targets = min(settings.target_classes
                  or (5 if l1 and settings.version == "standard" else 9), num_classes - 1)
    # Setup: the attack's own clean forward, and the driver's clean check and final
    # prediction of each batch (robustarch.attacks.autoattack runs one stage per call).
    stages = {
        "apgd-ce": Stage("apgd-ce", apgd_restarts, (iterations + 1) * eot, 1, 3),
        "apgd-dlr": Stage("apgd-dlr", apgd_restarts, (iterations + 1) * eot, 1, 3),
        "apgd-t": Stage("apgd-t", targets, iterations + 1, 2, 3),
        "fab-t": Stage("fab-t", targets, iterations, iterations + 3, 3),
        "fab": Stage("fab", fab_restarts, iterations * num_classes,
                     iterations * (2 - num_classes) + 3, 3),
        "square": Stage("square", 1, 0, queries + 1, 2),
    }
    unknown = [n for n in names if n not in stages]
    if unknown:
        raise ValueError(f"AutoAttack stage(s) {unknown} have no cost model; known: "
                         f"{', '.join(stages)}")
    return [stages[n] for n in names]


def autoattack_flops(stages: list[Stage], count: FlopCount, n: int, clean: float,
                     leaving: list[float], *, clean_done: bool = False, stage: int = 0,
                     position: int = 0) -> float:
    """FLOPs of AutoAttack on ``n`` samples: the clean pass, then each stage on the samples
    still robust; ``clean``: the clean-correct share, ``leaving[s]``: the share of those
    robust after stage ``s``. A resumed run (``clean_done``, at ``stage`` with ``position``
    of its samples done) counts only what is left."""
    flops = 0.0 if clean_done else n * count.forward
    entering = clean
    for s, each in enumerate(stages):
        left = 0.0 if s < stage else 1.0
        if s == stage and position:  # resumed inside this stage: its remaining batches
            left = max(0.0, 1 - position / max(1.0, entering * n))
        run = each.run_flops(count)
        flops += left * n * (entering * (each.setup * count.forward + run)
                             + (each.runs - 1) * clean * leaving[s] * run)
        entering = clean * leaving[s]
    return flops


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class JobCost:
    """A GPU job's work: counted FLOPs, the FLOP/s assumed for it and the GPU seconds that
    gives; ``resumable``: a job stopped at its time limit continues where it stopped."""

    flops: float
    flops_per_s: float
    resumable: bool

    @property
    def seconds(self) -> float:
        return self.flops / self.flops_per_s


def runtime_minutes(seconds: float, *, safety: float, startup: int, cap: int,
                    floor: int = 0) -> int:
    """The wall time to request: the estimate with a safety factor and the start-up, at least
    ``floor``, at most ``cap``."""
    return min(max(math.ceil(seconds * safety / 60) + startup, floor), cap)


def allocations(seconds: float, *, safety: float, startup: int, cap: int) -> int:
    """Allocations of at most ``cap`` minutes a job needs, each paying the start-up."""
    return max(1, math.ceil(seconds * safety / 60 / (cap - startup)))


def job_precision(bf16: bool | str) -> str:
    """The precision a job's ``bf16`` setting (training or evaluation) runs in."""
    # "auto" is bf16 on CUDA, where these jobs run.
    return "bf16" if bf16 in (True, "auto") else "fp32"


class CostModel:
    """The cost of each GPU job of a validated ``config``; ``root`` is the workflow's working
    directory (where results/ and checkpoints/ are)."""

    def __init__(self, config: Mapping[str, Any], *, root: str | Path = ".",
                 calibration: Mapping[str, Any] | None = None,
                 flops: FlopTable | None = None):
        self.config = config
        self.root = Path(root)
        self.throughput = Throughput(calibration)
        self.flops = flops or FlopTable()
        self._observed: dict[tuple[str, str, bool], tuple[list[float], list[float]]] = {}

    # ------------------------------------------------------------------ helpers

    def _count(self, dataset: str, arch: str) -> FlopCount:
        size = self.config["datasets"][dataset]["image_size"]
        return self.flops(arch, self.config["scale"], size)

    def _test_samples(self, dataset: str) -> int:
        n = dataset_spec(dataset).test_samples
        wanted = self.config["evaluation"]["num_samples"]
        return min(n, wanted) if wanted else n

    def _job(self, flops: float, arch: str, precision: str, *, evaluation: bool,
             resumable: bool) -> JobCost:
        rate = self.throughput.flops_per_s(arch, precision, evaluation=evaluation)
        return JobCost(flops=flops, flops_per_s=rate, resumable=resumable)

    def _model_dir(self, dataset: str, arch: str, method: str) -> Path:
        return self.root / "results" / dataset / arch / method

    def _observed_shares(self, dataset: str, attack: str, adversarial: bool
                         ) -> tuple[list[float], list[float]]:
        """Of the other models of ``dataset`` trained the same way: the final robust shares
        of their finished ``attack`` evaluations and the first-stage shares of their
        AutoAttack state files."""
        key = (dataset, attack, adversarial)
        if key not in self._observed:
            finals, firsts = [], []
            for outcome in sorted(self.root.glob(f"results/{dataset}/*/*/eval/{attack}.parquet")):
                if (parse_method(outcome.parent.parent.name)[0] is not Method.VANILLA
                        ) != adversarial:
                    continue
                clean = _read_correct(outcome.with_name("clean.parquet"))
                attacked = _read_correct(outcome)
                if clean and attacked and len(clean) == len(attacked) and any(clean):
                    finals.append(sum(attacked) / sum(clean))
            for state in sorted(self.root.glob(f"checkpoints/{dataset}/*/*/{attack}.state")):
                if (parse_method(state.parent.name)[0] is not Method.VANILLA) != adversarial:
                    continue
                shares = state_shares(_read_state(state) or {})[1]
                firsts += shares[:1]
            self._observed[key] = (finals, firsts)
        return self._observed[key]

    def outlook(self, dataset: str, arch: str, method: str, attack: str, *, kind: str,
                norm: str) -> Outlook:
        """Clean share and robust shares for an attack on the model (module docstring)."""
        adversarial = parse_method(method)[0] is not Method.VANILLA
        prior = paper_prior(arch, kind, norm, adversarial)
        model_dir = self._model_dir(dataset, arch, method)
        clean = _read_correct(model_dir / "eval" / "clean.parquet")
        if clean:
            observed_clean = sum(clean) / len(clean)
        else:
            selection = self.config["training"]["selection"]
            observed_clean = _selected_accuracy(model_dir / "metrics.csv", selection)
        finals, firsts = self._observed_shares(dataset, attack, adversarial)
        final = fmean(finals) if finals else prior.final
        first = fmean(firsts) if firsts else max(prior.first, final)
        return Outlook(clean=prior.clean if observed_clean is None else observed_clean,
                       first=max(first, final), final=final)

    # ------------------------------------------------------------------ the rules

    def train(self, dataset: str, arch: str, method: str) -> JobCost:
        settings = training_settings(self.config, dataset, arch, method)
        count = self._count(dataset, arch)
        steps = settings.adversary.steps
        per_image = {
            Method.VANILLA: count.train_step,
            Method.PGD_LINF: steps * count.attack_step + count.train_step,
            Method.PGD_LINF_L1: steps * count.attack_step + count.train_step,
            Method.TRADES: steps * count.attack_step + count.forward + 2 * count.train_step,
        }[settings.base_method]
        data = dataset_spec(dataset)
        per_epoch = data.train_samples * per_image + data.test_samples * count.forward
        epochs = settings.epochs - self._epochs_done(dataset, arch, method)
        return self._job(max(epochs, 0) * per_epoch, arch, job_precision(settings.bf16),
                         evaluation=False, resumable=True)

    def _epochs_done(self, dataset: str, arch: str, method: str) -> int:
        folder = self.root / "checkpoints" / dataset / arch / method
        if not folder.is_dir():
            return 0
        done = [int(m.group(1)) for p in folder.iterdir()
                if (m := re.fullmatch(r"epoch-(\d+)\.pt", p.name))]
        return max(done, default=0)

    def evaluate(self, dataset: str, arch: str, method: str, attack: str) -> JobCost:
        settings = attack_settings(self.config, attack, dataset)
        count = self._count(dataset, arch)
        n = self._test_samples(dataset)
        precision = job_precision(self.config["evaluation"]["bf16"])
        if settings.kind is AttackKind.CLEAN:
            return self._job(n * count.forward, arch, precision, evaluation=True,
                             resumable=False)
        outlook = self.outlook(dataset, arch, method, attack, kind=settings.kind.value,
                               norm=settings.norm)
        if settings.kind is AttackKind.PGD:
            if settings.early_stop:
                active = outlook.clean * (outlook.final + (1 - outlook.final) * _BROKEN_HALFWAY)
                per_sample = (count.forward + settings.steps * active * count.attack_step
                              + outlook.clean * outlook.final * count.forward)
            else:
                per_sample = settings.steps * count.attack_step + count.forward
            return self._job(n * per_sample, arch, precision, evaluation=True, resumable=False)
        flops = self._autoattack_flops(settings, count, n, outlook, dataset, arch, method)
        return self._job(flops, arch, precision, evaluation=True, resumable=True)

    def evaluate_model(self, dataset: str, arch: str, method: str) -> JobCost:
        """Every attack of the model in one job (``evaluation.jobs: per_model``), resumable
        attack by attack."""
        costs = [self.evaluate(dataset, arch, method, attack)
                 for attack in evaluated_attacks(self.config["run"], method)]
        flops = sum(c.flops for c in costs)
        return JobCost(flops, flops / sum(c.seconds for c in costs), resumable=True)

    def _autoattack_flops(self, settings: AutoAttackSettings, count: FlopCount, n: int,
                          outlook: Outlook, dataset: str, arch: str, method: str) -> float:
        stages = autoattack_stages(settings, self.config["datasets"][dataset]["num_classes"])
        state = _read_state(self.root / "checkpoints" / dataset / arch / method
                            / f"{settings.name}.state") or {}
        clean, shares = state_shares(state)
        leaving = list(shares)
        for s in range(len(shares), len(stages)):
            prior = outlook.first if s == 0 and len(stages) > 1 else outlook.final
            leaving.append(min(prior, leaving[-1]) if leaving else prior)
        if clean is None:  # no clean pass yet: nothing is done
            return autoattack_flops(stages, count, n, outlook.clean, leaving)
        return autoattack_flops(stages, count, n, clean, leaving, clean_done=True,
                                stage=state["stage"],
                                position=state["next_batch"] * state["config"]["batch_size"])

    def evaluate_corruptions(self, dataset: str, arch: str, method: str) -> JobCost:
        study = self.config["studies"]["corruptions"]
        passes = len(study["corruptions"]) * len(study["severities"])
        flops = self._test_samples(dataset) * passes * self._count(dataset, arch).forward
        return self._job(flops, arch, job_precision(self.config["evaluation"]["bf16"]),
                         evaluation=True, resumable=True)

    def analyse_model(self, dataset: str, arch: str, method: str) -> JobCost:
        settings = analysis_settings(self.config)
        land, lip = settings.landscape, settings.lipschitz
        count = self._count(dataset, arch)
        flops = (land.grid ** 2 + 1) * land.samples * count.forward
        flops += lip.samples * (count.forward + lip.restarts * (
            lip.steps * count.attack_step + count.forward))
        return self._job(flops, arch, "fp32", evaluation=True, resumable=False)

    def job(self, rule: str, wildcards: Mapping[str, str]) -> JobCost | None:
        """The cost of a job of ``rule``, None for a rule that uses no GPU."""
        w = dict(wildcards)
        if rule.startswith(PER_MODEL_EVALUATION):
            return self.evaluate_model(w["dataset"], w["arch"], w["method"])
        if rule not in GPU_RULES:
            return None
        model = (w["dataset"], w["arch"], w["method"])
        if rule == "evaluate":
            return self.evaluate(*model, w["attack"])
        return getattr(self, rule)(*model)
