"""Runs the benchmark suite in quick or full mode and writes the JSON and Markdown reports.

Workloads (all on scikit-learn's bundled digits, 3x32x32, so nothing is downloaded):

* ``train``: the config's training recipe for ``resnet`` at scale ``tiny`` with its PGD-ℓ∞
  adversary (our loop vs the conventional one).
* ``attack_pgd_*``: the config's evaluation attacks at their digits budgets on a tiny ResNet
  briefly adversarially trained first (FGSM with a random start, a few epochs; robust
  accuracy then lies strictly between 0 and the clean accuracy, so "not weaker" means
  something).
* ``attack_paper_pgd_*``: the same budgets, steps and step sizes on the same model, the paper
  protocol's PGD (:mod:`robustarch.attacks.paper_pgd`) against the authors' libraries
  (foolbox 3.0.4; ART 1.16.0 in its worker process, skipped with a message when its
  directory is missing).
* ``plan``: ``snakemake -n`` over the repository's ``config.yaml``.
* bf16 evaluation check on the same model; GPU figures and the cost model's calibration when
  CUDA is available (:mod:`robustarch.bench.gpu`).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from robustarch.bench.records import Record, machine_info, results_document, versions
from robustarch.settings import TrainingSettings


@dataclass(frozen=True)
class Sizes:
    train_batches: int          # training batches per round, each loop
    train_warmup: int
    train_repeats: int
    attack_samples: int         # batch attacked per round (ℓ∞ and ℓ2)
    attack_warmup: int
    attack_repeats: int
    l1_samples: int             # ART's ℓ1 PGD is the slowest contender: its own sizes
    l1_repeats: int
    plan_warmup: int
    plan_repeats: int
    precision_samples: int


QUICK = Sizes(train_batches=2, train_warmup=1, train_repeats=5, attack_samples=128,
              attack_warmup=1, attack_repeats=5, l1_samples=128, l1_repeats=5, plan_warmup=1,
              plan_repeats=3, precision_samples=128)
FULL = Sizes(train_batches=4, train_warmup=1, train_repeats=9, attack_samples=256,
             attack_warmup=1, attack_repeats=9, l1_samples=256, l1_repeats=5, plan_warmup=1,
             plan_repeats=5, precision_samples=360)
MODES = {"quick": QUICK, "full": FULL}

TRAIN_ARCH = "resnet"
DATASET = "digits"
# (strong protocol, paper protocol) attack of each norm: ours against torchattacks / the
# current ART, and our paper attacks against foolbox / ART 1.16.
EVAL_ATTACKS = {"linf": ("pgd_linf_es", "pgd_linf"), "l2": ("pgd_l2_es", "pgd_l2"),
                "l1": ("pgd_l1_sparse", "pgd_l1")}
ATTACK_EPOCHS = 8  # clean accuracy near 0.7: the attacks have robust samples to work on
ATTACK_MODEL = (f"{TRAIN_ARCH} (scale tiny) trained {ATTACK_EPOCHS} epochs on {DATASET} with "
                "FGSM + random start")


def find_repo(start: Path | None = None) -> Path:
    """The checkout holding ``Snakefile`` and ``config.yaml``: ``start`` (default: the current
    directory) or one of its parents, else the checkout this package was installed from."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents, Path(__file__).resolve().parents[3]):
        if (candidate / "Snakefile").exists() and (candidate / "config.yaml").exists():
            return candidate
    raise FileNotFoundError("no checkout with a Snakefile and config.yaml found; pass --repo")


def load_config(repo: Path) -> dict[str, Any]:
    import yaml

    from robustarch.config import load_schema, validate_config

    config = yaml.safe_load((repo / "config.yaml").read_text())
    return validate_config(config, load_schema(repo / "workflow/schemas/config.schema.yaml"))


def train_settings(config: dict[str, Any]) -> TrainingSettings:
    """The config's recipe for the tiny ResNet on digits (pgd_linf, the config's adversary)."""
    from robustarch.config import training_settings

    return training_settings({**config, "scale": "tiny"}, DATASET, TRAIN_ARCH, "pgd_linf")


def attack_model(config: dict[str, Any], data: dict[str, torch.Tensor], device: torch.device,
                 progress=print) -> torch.nn.Module:
    """A tiny ResNet trained with FGSM + random start (Wong et al. 2020)."""
    from robustarch.models import create_model
    from robustarch.train import train_model

    settings = train_settings(config)
    adversary = dataclasses.replace(settings.adversary, steps=1,
                                    step_size=1.25 * settings.adversary.eps)
    settings = dataclasses.replace(settings, epochs=ATTACK_EPOCHS, warmup_epochs=1, lr=1e-2,
                                   selection="last", seed=0, adversary=adversary)
    torch.manual_seed(0)
    model = create_model(TRAIN_ARCH, settings.num_classes, settings.image_size, "tiny",
                         settings.mean, settings.std)
    progress(f"training the attack benchmarks' model ({ATTACK_EPOCHS} epochs, FGSM-RS)")
    with tempfile.TemporaryDirectory(prefix="robustarch-bench-") as checkpoints:
        train_model(model, (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"]),
                    settings, checkpoint_dir=checkpoints, device=device, log=lambda _m: None)
    # The references get the model as a user of theirs has it: contiguous, parameters with
    # requires_grad (an attack that calls loss.backward() pays for weight gradients there).
    return model.to(memory_format=torch.contiguous_format).requires_grad_(True).eval()


def run(mode: str = "quick", *, repo: Path | None = None, device: str = "cpu",
        gpu: bool | None = None, only: tuple[str, ...] | None = None,
        progress=print) -> dict[str, Any]:
    """Run the suite; returns the JSON document (see :mod:`robustarch.bench.records`)."""
    from robustarch.bench.art116 import art116_missing
    from robustarch.bench.attacks import compare_attack, compare_paper_attack
    from robustarch.bench.goals import check_goals
    from robustarch.bench.planning import time_plan
    from robustarch.bench.precision import bf16_check
    from robustarch.bench.training import compare_training
    from robustarch.config import attack_settings
    from robustarch.data.datasets.digits import load_digits_tensors
    from robustarch.evaluate import prepare_for_evaluation
    from robustarch.models import create_model

    if gpu is None:
        gpu = torch.cuda.is_available()
    elif gpu and not torch.cuda.is_available():
        raise RuntimeError("--gpu: CUDA is not available on this machine")
    sizes = MODES[mode]
    repo = find_repo(repo)
    config = load_config(repo)
    dev = torch.device(device)
    wanted = set(only or ("train", "attacks", "plan", "precision", "gpu"))
    data = load_digits_tensors()
    records: list[Record] = []
    extra: dict[str, Any] = {}
    started = datetime.datetime.now(datetime.UTC)

    if "train" in wanted:
        settings = train_settings(config)
        progress(f"train: {TRAIN_ARCH} (tiny), batch {settings.batch_size}, "
                 f"PGD-{settings.adversary.steps}, {sizes.train_batches} batches a round")
        torch.manual_seed(settings.seed)
        model = create_model(TRAIN_ARCH, settings.num_classes, settings.image_size,
                             "tiny", settings.mean, settings.std)
        records.append(compare_training(
            model, data["x_train"], data["y_train"], settings, batches=sizes.train_batches,
            warmup=sizes.train_warmup, repeats=sizes.train_repeats, device=dev,
            progress=progress))

    if wanted & {"attacks", "precision"}:
        model = attack_model(config, data, dev, progress).to(dev)
        attacks = {name: attack_settings(config, name, DATASET)
                   for pair in EVAL_ATTACKS.values() for name in pair}
    if "attacks" in wanted:
        for strong, paper in EVAL_ATTACKS.values():
            name, settings = strong, attacks[strong]
            count = sizes.l1_samples if settings.norm == "l1" else sizes.attack_samples
            repeats = sizes.l1_repeats if settings.norm == "l1" else sizes.attack_repeats
            x = data["x_test"][:count].to(dev).float().div(255)
            y = data["y_test"][:count].to(dev)
            progress(f"attack {name}: {count} images, {settings.steps} steps")
            common = dict(warmup=sizes.attack_warmup, repeats=repeats,
                          model_description=ATTACK_MODEL, arch=TRAIN_ARCH, progress=progress,
                          fold_batchnorm=config["evaluation"]["fold_batchnorm"])
            records.append(compare_attack(model, x, y, settings, **common))
            missing = art116_missing() if settings.norm == "l1" else None
            if missing is not None:
                progress(f"paper protocol {name}: skipped: {missing}")
                continue
            progress(f"paper protocol {paper}: {count} images, {attacks[paper].steps} steps")
            records.append(compare_paper_attack(model, x, y, attacks[paper], **common))
    if "precision" in wanted:
        progress("bf16 evaluation check")
        n = sizes.precision_samples
        # The model as the evaluation loads it (frozen, channels_last, norms folded as asked).
        evaluated = prepare_for_evaluation(copy.deepcopy(model), TRAIN_ARCH, dev,
                                           fold_batchnorm=config["evaluation"]["fold_batchnorm"])
        extra["precision"] = {
            "device": str(dev), "model": ATTACK_MODEL,
            "rows": bf16_check(evaluated, data["x_test"][:n], data["y_test"][:n], attacks,
                               device=dev),
        }

    if "plan" in wanted:
        progress("plan: snakemake -n --cores 1")
        records.append(time_plan(repo, warmup=sizes.plan_warmup, repeats=sizes.plan_repeats,
                                 progress=progress))

    if "gpu" in wanted and gpu:
        from robustarch.bench.gpu import GPU_SIZES, gpu_section

        section, gpu_records = gpu_section(config, sizes=GPU_SIZES[mode],
                                           device=torch.device("cuda"), progress=progress)
        extra["gpu"] = section
        records.extend(gpu_records)
    else:
        extra["gpu"] = None

    finished = datetime.datetime.now(datetime.UTC)
    return results_document(
        records, machine=machine_info(), versions=versions(), mode=mode,
        sizes=asdict(sizes), device=str(dev), started=started.isoformat(timespec="seconds"),
        duration_s=round((finished - started).total_seconds(), 1),
        goals=check_goals(records), **extra,
    )
