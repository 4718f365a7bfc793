"""GPU figures: PGD-10 adversarial training of the paper-size ResNet and ViT on CIFAR-size input.

For each model and each setting (fp32; bf16 autocast; bf16 + channels_last; bf16 +
channels_last + ``torch.compile``) our loop (:func:`robustarch.train.train_model`, the CIFAR-10
recipe of the config, random uint8 images since speed does not depend on content) trains one
warm-up epoch and then ``repeats`` timed epochs; images/s is the median over the timed epochs
(the loop's own epoch clock), peak memory is ``torch.cuda.max_memory_allocated``. The model's
FLOPs per trained image (attack steps + training step) are counted with
``torch.utils.flop_counter``, which gives the share of the GPU's dense bf16 peak that the best
setting reaches.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
from typing import Any

import torch
import torch.nn.functional as F

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

VARIANTS: dict[str, dict[str, bool]] = {
    "fp32": {"bf16": False, "channels_last": False, "compile": False},
    "bf16": {"bf16": True, "channels_last": False, "compile": False},
    "bf16_channels_last": {"bf16": True, "channels_last": True, "compile": False},
    "bf16_channels_last_compile": {"bf16": True, "channels_last": True, "compile": True},
}

PGD10 = Adversary(eps=8 / 255, steps=10, step_size=2 / 255, random_start=True)


def peak_bf16_flops(device_name: str) -> float | None:
    """The dense bf16 peak in FLOP/s of a GPU known by name, else None."""
    for needle, tflops in PEAK_BF16_TFLOPS:
        if needle.lower() in device_name.lower():
            return tflops * 1e12
    return None


def train_flops_per_image(model: torch.nn.Module, *, image_size: int, adversary: Adversary,
                          device: torch.device | str = "cpu", batch: int = 2) -> float:
    """FLOPs of one adversarial training step per image: ``steps`` attack steps (forward and
    input gradient, as our PGD runs them) plus the training forward and backward (matmuls and
    convolutions, as ``torch.utils.flop_counter`` counts them)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(batch, 3, image_size, image_size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    was_training = model.training

    def count(step) -> int:
        counter = FlopCounterMode(display=False)
        with counter:
            step()
        return counter.get_total_flops()

    def attack_step() -> None:
        # backward(inputs=[x]) runs the ops autograd.grad(loss, x) runs in our PGD; the counter
        # cannot follow autograd.grad on a leaf tensor itself.
        x_leaf = x.clone().requires_grad_(True)
        F.cross_entropy(model(x_leaf), y).backward(inputs=[x_leaf])

    def train_step() -> None:
        F.cross_entropy(model(x), y).backward()

    model.eval()
    attack = count(attack_step)
    model.train()
    train = count(train_step)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return (adversary.steps * attack + train) / batch


def train_throughput(arch: str, variant: dict[str, bool], base: TrainingSettings, *,
                     batch_size: int, batches: int, repeats: int, device: torch.device,
                     scale: str = "paper") -> dict[str, Any]:
    """Images/s (median of ``repeats`` epochs after a warm-up epoch) and peak memory (CUDA)."""
    from robustarch.models import create_model
    from robustarch.train import train_model

    settings = dataclasses.replace(base, **variant, arch=arch, scale=scale, method="pgd_linf",
                                   adversary=PGD10, batch_size=batch_size, epochs=1 + repeats,
                                   warmup_epochs=0, selection="last")
    n = batch_size * batches
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, base.image_size, base.image_size),
                      dtype=torch.uint8, generator=generator)
    y = torch.randint(0, base.num_classes, (n,), generator=generator)
    torch.manual_seed(0)
    model = create_model(arch, base.num_classes, base.image_size, scale,
                         base.mean, base.std)
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory(prefix="robustarch-bench-gpu-") as checkpoints:
        result = train_model(model, (x, y), (x[:2], y[:2]), settings,
                             checkpoint_dir=checkpoints, device=device, log=lambda _m: None)
    epochs = [n / row["time_s"] for row in result.metrics[1:]]
    return {"images_per_s": statistics.median(epochs), "epoch_images_per_s": epochs,
            "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if on_cuda
            else None}


def gpu_figures(base: TrainingSettings, *, archs: tuple[str, ...], batch_size: int, batches: int,
                repeats: int, device: torch.device, scale: str = "paper",
                variants: tuple[str, ...] = tuple(VARIANTS), progress=print
                ) -> tuple[dict[str, Any], list[Record]]:
    """The GPU section of the report, and one record per fast setting (reference: fp32, which
    ``variants`` must include)."""
    from robustarch.models import create_model

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    peak = peak_bf16_flops(name)
    section: dict[str, Any] = {"device": name, "peak_bf16_tflops": peak and peak / 1e12,
                               "batch_size": batch_size, "adversary": "PGD-10, eps 8/255",
                               "models": {}}
    records = []
    for arch in archs:
        figures = {}
        for variant in variants:
            progress(f"  gpu {arch} {variant}")
            figures[variant] = train_throughput(arch, VARIANTS[variant], base,
                                                batch_size=batch_size, batches=batches,
                                                repeats=repeats, device=device, scale=scale)
        model = create_model(arch, base.num_classes, base.image_size, scale,
                             base.mean, base.std).to(device)
        flops = train_flops_per_image(model, image_size=base.image_size, adversary=PGD10,
                                      device=device)
        best = max(figures, key=lambda v: figures[v]["images_per_s"])
        achieved = flops * figures[best]["images_per_s"]
        section["models"][arch] = {
            "settings": figures, "flops_per_image": flops, "best": best,
            "achieved_tflops": achieved / 1e12,
            "peak_share": achieved / peak if peak else None,
        }
        for variant in variants:
            if variant != "fp32":
                records.append(Record(f"gpu_train_{arch}_{variant}",
                                      figures[variant]["images_per_s"],
                                      figures["fp32"]["images_per_s"], "images/s",
                                      {"reference": "fp32, same loop", "device": name}))
    return section, records
