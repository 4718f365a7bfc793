"""GPU figures, and the calibration of the workflow's cost model (``--gpu``).

Everything runs our own code on random CIFAR- or ImageNette-shaped data (speed does not depend
on content), at the paper's model sizes, sized to take about 8 minutes on an H100/H200
(:data:`GPU_SIZES`):

* **Settings.** PGD adversarial training (the config's recipe and adversary, our loop
  :func:`robustarch.train.train_model`) of ResNet-50 (``resnet``), ViT, Swin and CoAtNet on
  32-px images, and of ResNet-50 on 224-px images, under fp32 (cuDNN's convolutions in TF32,
  matrix products in fp32: torch's defaults), fp32 with TF32 matrix products, bf16 autocast,
  bf16 + channels_last, bf16 + channels_last + ``torch.compile`` (ResNet and ViT: compiling
  takes about a minute per model), and fp32 without folding the batch norms into the
  convolutions while crafting the attacks (``training.fold_batchnorm: false``; the models
  with batch norms). One warm-up epoch of a few batches, then timed epochs (the loop's own
  epoch clock); images/s is their median, peak memory ``torch.cuda.max_memory_allocated``.
* **One epoch per architecture.** Every architecture of ``run.architectures`` with the
  config's own settings, a few timed batches after a warm-up epoch, extrapolated to an epoch
  of CIFAR-10 (50,000 training images and the clean test pass over 10,000).
* **AutoAttack.** The config's ``aa_linf`` (standard: APGD-CE, APGD-T, FAB-T, Square) on 500
  images for ResNet-50 and ViT, with fewer iterations (each stage's throughput is what is
  measured; labels are the model's own clean predictions, so every sample is attacked). Its
  FLOPs follow the samples each stage actually attacked (the run's state file).

FLOPs are counted (:mod:`robustarch.models.flops`); achieved FLOP/s = counted FLOPs per image x
images/s, and the share of the GPU's dense bf16 peak (MFU) is that over :data:`PEAK_BF16_TFLOPS`.
The calibration file (``docs/gpu_calibration.json``, :func:`calibration`) keeps the achieved
FLOP/s per model family (epochs), per category for the other precision (settings) and the
ratio of AutoAttack's rate to training's: :mod:`robustarch.workflow.costs` reads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from statistics import fmean
from typing import Any

import torch

from robustarch.bench.records import Record
from robustarch.settings import Adversary, TrainingSettings

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendor's data sheets, matched
# against torch.cuda.get_device_name; the first match wins, so specific names come first.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("GH200", 989.4),
    ("H200", 989.4),
    ("H100", 989.4),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
)

# Training settings compared (fields of TrainingSettings, and tf32: TF32 matrix products).
VARIANTS: dict[str, dict[str, bool]] = {
    "fp32": {"bf16": False, "channels_last": False, "compile": False},
    "tf32": {"bf16": False, "channels_last": False, "compile": False, "tf32": True},
    "bf16": {"bf16": True, "channels_last": False, "compile": False},
    "bf16_channels_last": {"bf16": True, "channels_last": True, "compile": False},
    "bf16_channels_last_compile": {"bf16": True, "channels_last": True, "compile": True},
    "fp32_unfolded": {"bf16": False, "channels_last": False, "compile": False,
                      "fold_batchnorm": False},
}
# The variant whose rate stands for a precision's category in the calibration.
PRECISION_VARIANT = {"fp32": "fp32", "bf16": "bf16_channels_last"}
SETTINGS_ARCHS = ("resnet", "vit", "swin", "coatnet")
COMPILE_ARCHS = ("resnet", "vit")
WIDE_ARCH = "resnet"  # the one architecture timed on 224-px images
WIDE_VARIANTS = ("fp32", "bf16_channels_last")
AUTOATTACK_ARCHS = ("resnet", "vit")
_AA_NORMS = {"linf": "Linf", "l2": "L2", "l1": "L1"}  # pyautoattack's names

@dataclass(frozen=True)
class GpuSizes:
    batches: int  # timed batches per epoch (settings)
    repeats: int  # timed epochs after the warm-up epoch (settings)
    epoch_batches: int  # timed batches of each architecture's epoch
    aa_samples: int
    aa_iterations: int  # AutoAttack's iterations (Square: 50 queries each)


GPU_SIZES = {"quick": GpuSizes(batches=4, repeats=2, epoch_batches=4, aa_samples=500,
                               aa_iterations=10),
             "full": GpuSizes(batches=10, repeats=3, epoch_batches=10, aa_samples=500,
                              aa_iterations=25)}


def peak_bf16_flops(device_name: str) -> float | None:
    """The dense bf16 peak in FLOP/s of a GPU known by name, else None."""
    for needle, tflops in PEAK_BF16_TFLOPS:
        if needle.lower() in device_name.lower():
            return tflops * 1e12
    return None


def train_flops_per_image(model: torch.nn.Module, *, image_size: int, adversary: Adversary,
                          device: torch.device | str = "cpu", batch: int = 2) -> float:
    """FLOPs of one adversarial training step per image: ``steps`` attack steps (forward and
    input gradient, as our PGD runs them) plus the training forward and backward
    (:func:`robustarch.models.flops.count_model`)."""
    from robustarch.models.flops import count_model

    _, attack, train = count_model(model, image_size=image_size, device=str(device),
                                   batch=batch)
    return adversary.steps * attack + train


def _arch_flops(arch: str, scale: str, image_size: int, adversary: Adversary
                ) -> tuple[float, float]:
    """(training FLOPs per image: attack steps + training step; forward FLOPs), counted."""
    from robustarch.models.flops import count_architecture

    count = count_architecture(arch, scale, image_size)
    return adversary.steps * count.attack_step + count.train_step, count.forward


@contextlib.contextmanager
def _tf32_matmuls(enabled: bool) -> Iterator[None]:
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled or previous
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def _random_split(n: int, image_size: int, num_classes: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, image_size, image_size), dtype=torch.uint8,
                      generator=generator)
    return x, torch.randint(0, num_classes, (n,), generator=generator)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_throughput(arch: str, variant: Mapping[str, bool], base: TrainingSettings, *,
                     batch_size: int, batches: int, repeats: int, device: torch.device,
                     scale: str = "paper") -> dict[str, Any]:
    """Images/s (median of ``repeats`` epochs of ``batches`` batches after a warm-up epoch)
    and peak memory (CUDA) of ``base``'s training of ``arch`` with ``variant``'s settings."""
    from robustarch.models import create_model
    from robustarch.train import train_model

    fields = {k: v for k, v in variant.items() if k != "tf32"}
    settings = dataclasses.replace(base, **fields, arch=arch, scale=scale,
                                   batch_size=batch_size, epochs=1 + repeats, warmup_epochs=0,
                                   selection="last")
    x, y = _random_split(batch_size * batches, base.image_size, base.num_classes)
    torch.manual_seed(0)
    model = create_model(arch, base.num_classes, base.image_size, scale, base.mean, base.std)
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory(prefix="robustarch-bench-gpu-") as checkpoints, \
            _tf32_matmuls(bool(variant.get("tf32"))):
        result = train_model(model, (x, y), (x[:2], y[:2]), settings,
                             checkpoint_dir=checkpoints, device=device, log=lambda _m: None)
    epochs = [len(x) / row["time_s"] for row in result.metrics[1:]]
    return {"images_per_s": statistics.median(epochs), "epoch_images_per_s": epochs,
            "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if on_cuda
            else None}


def _rates(flops: float, images_per_s: float, peak: float | None) -> dict[str, Any]:
    achieved = flops * images_per_s
    return {"achieved_tflops": achieved / 1e12, "peak_share": achieved / peak if peak else None}


def gpu_figures(base: TrainingSettings, *, archs: tuple[str, ...], batch_size: int, batches: int,
                repeats: int, device: torch.device, scale: str = "paper",
                variants: tuple[str, ...] = tuple(VARIANTS), peak: float | None = None,
                progress=print) -> tuple[dict[str, Any], list[Record]]:
    """Per architecture and setting: images/s, peak memory, achieved TFLOP/s and share of
    ``peak``; and one record per setting other than fp32 (its reference, which ``variants``
    must include). ``fp32_unfolded`` runs only for models with batch norms, ``*_compile``
    only where the caller lists it."""
    from robustarch.models.flops import build_on

    models, records = {}, []
    for arch in archs:
        flops, _ = _arch_flops(arch, scale, base.image_size, base.adversary)
        probe = build_on(arch, scale, base.image_size, base.num_classes, "meta")
        norms = any(isinstance(m, torch.nn.BatchNorm2d) for m in probe.modules())
        figures = {}
        for variant in variants:
            if variant == "fp32_unfolded" and not norms:
                continue
            progress(f"  gpu {arch} {base.image_size} px {variant}")
            run = train_throughput(arch, VARIANTS[variant], base, batch_size=batch_size,
                                   batches=batches, repeats=repeats, device=device, scale=scale)
            figures[variant] = {**run, **_rates(flops, run["images_per_s"], peak)}
        best = max(figures, key=lambda v: figures[v]["images_per_s"])
        models[arch] = {"settings": figures, "flops_per_image": flops, "best": best,
                        "image_size": base.image_size}
        for variant, figure in figures.items():
            if variant != "fp32":
                records.append(Record(f"gpu_train_{arch}_{base.image_size}px_{variant}",
                                      figure["images_per_s"], figures["fp32"]["images_per_s"],
                                      "images/s", {"reference": "fp32, same loop"}))
    return models, records


def epoch_figures(settings_of, *, archs: tuple[str, ...], batches: int, device: torch.device,
                  scale: str = "paper", train_samples: int, test_samples: int,
                  peak: float | None = None, progress=print) -> dict[str, Any]:
    """Per architecture, with its config settings (``settings_of(arch)``): images/s over
    ``batches`` timed batches after a warm-up epoch, an epoch of ``train_samples`` plus the
    clean pass over ``test_samples`` extrapolated from them, peak memory and rates."""
    from robustarch.models.catalog import model_info

    figures = {}
    for arch in archs:
        base = settings_of(arch)
        progress(f"  gpu epoch {arch}")
        run = train_throughput(arch, {}, base, batch_size=base.batch_size, batches=batches,
                               repeats=1, device=device, scale=scale)
        flops, forward = _arch_flops(arch, scale, base.image_size, base.adversary)
        rates = _rates(flops, run["images_per_s"], peak)
        achieved = rates["achieved_tflops"] * 1e12
        epoch_s = train_samples / run["images_per_s"] + test_samples * forward / achieved
        figures[arch] = {"category": model_info(arch).category, "family": model_info(arch).family,
                         "images_per_s": run["images_per_s"],
                         "peak_memory_gib": run["peak_memory_gib"], "flops_per_image": flops,
                         "epoch_minutes": epoch_s / 60, **rates}
    return figures


def autoattack_figures(config: Mapping[str, Any], *, archs: tuple[str, ...], samples: int,
                       iterations: int, device: torch.device, scale: str = "paper",
                       dataset: str = "cifar10", peak: float | None = None,
                       progress=print) -> dict[str, Any]:
    """The config's ``aa_linf`` on ``samples`` random images per architecture, as our
    evaluation runs it (model prepared as :func:`robustarch.evaluate.prepare_for_evaluation`
    does); its FLOPs from the samples each stage attacked (the state file)."""
    import json
    from pathlib import Path

    from robustarch.attacks import autoattack
    from robustarch.evaluate import prepare_for_evaluation
    from robustarch.models import create_model
    from robustarch.models.flops import count_architecture
    from robustarch.settings import attack_settings
    from robustarch.workflow.costs import autoattack_flops, autoattack_stages, state_shares

    settings = dataclasses.replace(attack_settings(config, "aa_linf", dataset),
                                   iterations=iterations)
    data = config["datasets"][dataset]
    figures = {}
    for arch in archs:
        progress(f"  gpu autoattack {arch}")
        torch.manual_seed(0)
        model = prepare_for_evaluation(
            create_model(arch, data["num_classes"], data["image_size"], scale, data["mean"],
                         data["std"]), arch, device,
            fold_batchnorm=config["evaluation"]["fold_batchnorm"])
        x = _random_split(samples, data["image_size"], data["num_classes"])[0].float() / 255
        with torch.no_grad():
            y = model(x.to(device)).argmax(1).cpu()  # every sample starts classified correctly
        with tempfile.TemporaryDirectory(prefix="robustarch-bench-aa-") as folder:
            state_path = Path(folder) / "aa.state"
            _sync(device)
            start = time.perf_counter()
            predictions = autoattack(model, x, y, norm=_AA_NORMS[settings.norm], eps=settings.eps,
                                     version=settings.version, attacks=settings.components,
                                     batch_size=samples, state_path=state_path, device=device,
                                     n_iter=iterations, n_restarts=settings.restarts)
            _sync(device)
            seconds = time.perf_counter() - start
            clean, shares = state_shares(json.loads(state_path.read_text()))
        count = count_architecture(arch, scale, data["image_size"])
        flops = autoattack_flops(autoattack_stages(settings, data["num_classes"]), count,
                                 samples, clean, shares)
        figures[arch] = {"samples": samples, "iterations": iterations, "seconds": seconds,
                         "robust_share": float((predictions == y).float().mean()),
                         "flops": flops, **_rates(flops / samples, samples / seconds, peak)}
    return figures


def _mean_by(figures: Mapping[str, Mapping[str, Any]], key: str) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for figure in figures.values():
        groups.setdefault(figure[key], []).append(figure["achieved_tflops"] * 1e12)
    return {k: fmean(v) for k, v in groups.items()}


def calibration(section: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The cost model's calibration from a GPU section (:mod:`robustarch.workflow.costs`):
    achieved FLOP/s per family and category in the config's training precision (the epochs),
    per category in the other one (the settings), and AutoAttack's rate over training's."""
    from robustarch.models.catalog import model_info
    from robustarch.workflow.costs import CALIBRATION_FORMAT, job_precision

    precision = job_precision(config["training"]["bf16"])
    other = "fp32" if precision == "bf16" else "bf16"
    epochs = section["epochs"]
    variant = PRECISION_VARIANT[other]
    measured = {arch: {"category": model_info(arch).category, **fig["settings"][variant]}
                for arch, fig in section["settings"].items()
                if variant in fig["settings"] and fig["image_size"] == section["image_size"]}
    factors = [fig["achieved_tflops"] / epochs[arch]["achieved_tflops"]
               for arch, fig in section["autoattack"].items() if arch in epochs]
    return {
        "format": CALIBRATION_FORMAT, "device": section["device"],
        "measured": section["measured"], "peak_bf16_tflops": section["peak_bf16_tflops"],
        "settings": {k: config["training"][k]
                     for k in ("bf16", "channels_last", "compile", "fold_batchnorm")},
        "throughput": {precision: {"families": _mean_by(epochs, "family"),
                                   "categories": _mean_by(epochs, "category")},
                       other: {"categories": _mean_by(measured, "category")}},
        "evaluation_factor": fmean(factors) if factors else None,
    }


def gpu_section(config: Mapping[str, Any], *, sizes: GpuSizes, device: torch.device,
                scale: str = "paper", archs: Mapping[str, tuple[str, ...]] | None = None,
                variants: tuple[str, ...] = tuple(VARIANTS), progress=print
                ) -> tuple[dict[str, Any], list[Record]]:
    """The whole GPU section (module docstring) and its records; ``archs`` overrides the
    architectures of "settings", "compile", "wide", "epochs" and "autoattack"."""
    from robustarch.config import training_settings
    from robustarch.data.registry import dataset_spec

    archs = {"settings": SETTINGS_ARCHS, "compile": COMPILE_ARCHS, "wide": (WIDE_ARCH,),
             "epochs": tuple(config["run"]["architectures"]),
             "autoattack": AUTOATTACK_ARCHS, **(archs or {})}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    peak = peak_bf16_flops(name)
    base = training_settings(config, "cifar10", "resnet", "pgd_linf")
    wide = training_settings(config, "imagenette", WIDE_ARCH, "pgd_linf")
    started = time.perf_counter()
    settings, records = {}, []
    for arch in archs["settings"]:
        chosen = tuple(v for v in variants if "compile" not in v or arch in archs["compile"])
        figures, found = gpu_figures(base, archs=(arch,), batch_size=base.batch_size,
                                     batches=sizes.batches, repeats=sizes.repeats,
                                     device=device, scale=scale, variants=chosen, peak=peak,
                                     progress=progress)
        settings.update(figures)
        records += found
    for arch in archs["wide"]:
        figures, found = gpu_figures(wide, archs=(arch,), batch_size=wide.batch_size,
                                     batches=sizes.batches, repeats=sizes.repeats,
                                     device=device, scale=scale,
                                     variants=tuple(v for v in WIDE_VARIANTS if v in variants),
                                     peak=peak, progress=progress)
        settings[f"{arch}@{wide.image_size}px"] = figures[arch]
        records += found
    cifar = dataset_spec("cifar10")
    epochs = epoch_figures(lambda a: training_settings(config, "cifar10", a, "pgd_linf"),
                           archs=archs["epochs"], batches=sizes.epoch_batches, device=device,
                           scale=scale, train_samples=cifar.train_samples,
                           test_samples=cifar.test_samples, peak=peak, progress=progress)
    autoattack = autoattack_figures(config, archs=archs["autoattack"],
                                    samples=sizes.aa_samples, iterations=sizes.aa_iterations,
                                    device=device, scale=scale, peak=peak, progress=progress)
    section = {
        "device": name, "peak_bf16_tflops": peak and peak / 1e12,
        "measured": datetime.date.today().isoformat(), "scale": scale,
        "batch_size": base.batch_size, "image_size": base.image_size,
        "adversary": f"PGD-{base.adversary.steps}, eps {base.adversary.eps * 255:.0f}/255",
        "sizes": dataclasses.asdict(sizes), "settings": settings, "epochs": epochs,
        "autoattack": autoattack, "seconds": time.perf_counter() - started,
    }
    section["calibration"] = calibration(section, config)
    return section, records
