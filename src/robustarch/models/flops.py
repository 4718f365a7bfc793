"""FLOPs per image of every registered architecture, counted, and kept in ``models/flops.json``.

What a job costs (:mod:`robustarch.workflow.costs`) is a sum of three counted quantities of
its model, per image and so independent of the batch size:

* ``forward``: one forward pass, eval mode (a clean prediction; an attack's forward-only query);
* ``attack_step``: one attack step, eval mode: the forward and the ops of
  ``torch.autograd.grad(loss, x)`` with respect to the input only, as our attacks take it
  (attention has no weights, so its input gradient costs twice its forward: the step costs a
  little more than twice the forward in the attention-heavy models);
* ``train_step``: one training step, train mode: forward and the full backward (input and
  weight gradients), about three forwards.

They are counted with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products,
convolutions and attention; 2 FLOPs per multiply-add; element-wise ops, norms and softmax are
not counted: the achieved FLOP/s a calibration measures absorbs them), on the ``meta`` device,
which runs no arithmetic and decomposes attention into the matrix products the counter sees; a
model the meta device cannot run is counted on the CPU.
Two formulas of torch's counter are replaced: its convolution backward counts the weight
gradient of a grouped (depthwise) convolution as if ungrouped (``groups`` times too many
FLOPs, 7x the forward for CoAtNet's training step), and it does not know the CPU's fused
attention kernel.

The counts are taken with 10 classes: the class count enters only the classifier head, 2 x
width x classes FLOPs per forward (0.02 % of ResNet-50's forward for CIFAR-100's 100 classes),
so one count serves every dataset of an image size.

``python -m robustarch.models.flops`` writes the table for both scales and every image size of
the registered datasets (a few minutes on two cores: networks of the same structure, e.g. a
``-relu`` twin and its original, are counted once, in one worker process per CPU). Like
``models/catalog.json`` it records the hash of the model sources
(:func:`robustarch.models.catalog.source_hash`) and of this counter, and :func:`read_flops`
trusts it only while both match; reading it imports no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_text
from .catalog import MODELS_DIR, source_hash

FLOPS_PATH = MODELS_DIR / "flops.json"
NUM_CLASSES = 10
SCALES = ("paper", "tiny")
_BATCH = 2  # images per counted pass (counts are per image; 2 keeps batch norm in train mode)

__all__ = ["FLOPS_PATH", "FlopCount", "build_on", "count_all", "count_architecture", "count_model",
           "counter_hash", "flop_counter", "image_sizes", "read_flops", "write_flops"]


@dataclass(frozen=True)
class FlopCount:
    """Counted FLOPs per image of one architecture at one scale and image size."""

    arch: str
    scale: str
    image_size: int
    forward: float
    attack_step: float
    train_step: float
    device: str  # where it was counted: "meta" or "cpu"


def counter_hash() -> str:
    """sha256 of this module: a changed counting method invalidates the table too."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def image_sizes() -> list[int]:
    """The image sizes of the registered datasets (their modules' defaults)."""
    from ..data.registry import registered_datasets

    return sorted({spec.image_size for spec in registered_datasets().values()})


# --------------------------------------------------------------------------- counting (torch)


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                        transposed, _output_padding, _groups, output_mask, out_shape=None,
                        **_kwargs) -> int:
    """Each multiply-add of a convolution recurs once in its input gradient and once in its
    weight gradient, grouped or not (torch's formula ignores ``groups`` for the weight)."""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape),
                              transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def _attention_flop(query, key, value, *_args, **_kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query, key, value)


def _attention_backward_flop(grad_out, query, key, value, *_args, **_kwargs) -> int:
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(grad_out, query, key, value)


def flop_counter():
    """A ``FlopCounterMode`` with the grouped-convolution backward and the CPU fused attention
    counted correctly (see the module docstring)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    mapping = {aten.convolution_backward: _conv_backward_flop}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        # The CPU's fused kernels count as the CUDA ones (torch registers only those).
        mapping[aten._scaled_dot_product_flash_attention_for_cpu] = _attention_flop
        mapping[aten._scaled_dot_product_flash_attention_for_cpu_backward] = (
            _attention_backward_flop)
    return FlopCounterMode(display=False, custom_mapping=mapping)


def count_model(model, *, image_size: int, num_classes: int = NUM_CLASSES,
                device: str = "cpu", batch: int = _BATCH) -> tuple[float, float, float]:
    """``(forward, attack_step, train_step)`` FLOPs per image of ``model`` (which lives on
    ``device``; its mode and gradients are left as they were)."""
    import torch
    import torch.nn.functional as F

    x = torch.rand(batch, 3, image_size, image_size, device=device)
    y = torch.randint(0, num_classes, (batch,), device=device)
    was_training = model.training
    grads = {name: p.grad for name, p in model.named_parameters()}
    try:
        model.eval()
        attack = flop_counter()
        with attack:
            # backward(inputs=[x]) runs the ops autograd.grad(loss, x) runs in our attacks;
            # the counter cannot follow autograd.grad on a leaf tensor itself. The forward
            # part is the eval-mode forward pass (a pass fewer to count).
            x_leaf = x.clone().requires_grad_(True)
            loss = F.cross_entropy(model(x_leaf), y)
            forward = attack.get_total_flops()
            loss.backward(inputs=[x_leaf])
        model.train()
        train = flop_counter()
        with train:
            F.cross_entropy(model(x), y).backward()
    finally:
        for name, p in model.named_parameters():
            p.grad = grads[name]
        model.train(was_training)
    return forward / batch, attack.get_total_flops() / batch, train.get_total_flops() / batch


def build_on(arch: str, scale: str, image_size: int, num_classes: int, device: str):
    """``arch`` built on ``device`` (on "meta": no memory, no arithmetic)."""
    import torch

    from .registry import create_model

    torch.manual_seed(0)
    try:
        with torch.device(device):
            return create_model(arch, num_classes, image_size, scale)
    except (NotImplementedError, RuntimeError):
        if device != "meta":
            raise
        # A builder computing with tensors (e.g. .item() on a schedule): build on the CPU.
        return create_model(arch, num_classes, image_size, scale).to("meta")


def _structure(model) -> str:
    """What the counts depend on: the module tree with its activations' names left out (the
    counter counts no element-wise op, so a ``-relu`` twin counts as its GELU original) and
    every parameter's and buffer's shape."""
    tree = re.sub(r"\b(GELU|ReLU6?|SiLU|Hardswish|Sigmoid|Tanh)\([^()]*\)", "Act()", repr(model))
    shapes = [(n, tuple(t.shape)) for n, t in [*model.named_parameters(), *model.named_buffers()]]
    return hashlib.sha256(f"{tree}\n{shapes}".encode()).hexdigest()


def count_architecture(arch: str, scale: str, image_size: int,
                       num_classes: int = NUM_CLASSES) -> FlopCount:
    """Count ``arch`` on the meta device, or on the CPU where meta cannot run it."""
    failure = None
    for device in ("meta", "cpu"):
        try:
            model = build_on(arch, scale, image_size, num_classes, device)
            counts = count_model(model, image_size=image_size, num_classes=num_classes,
                                 device=device)
        except (NotImplementedError, RuntimeError) as exc:  # an op meta has no kernel for
            failure = exc
            continue
        return FlopCount(arch, scale, image_size, *counts, device=device)
    raise RuntimeError(f"cannot count the FLOPs of {arch!r} ({scale}, {image_size} px): "
                       f"{failure}")


def _count_group(keys: list[tuple[str, str, int]]) -> list[FlopCount]:
    """Count the first of ``keys`` (architectures of one structure) and copy it to the rest."""
    first = count_architecture(*keys[0])
    return [dataclasses.replace(first, arch=a, scale=s, image_size=i) for a, s, i in keys]


def _groups(keys: list[tuple[str, str, int]]) -> list[list[tuple[str, str, int]]]:
    """``keys`` grouped by the structure of their networks (built on meta: no arithmetic)."""
    groups: dict[tuple[str, int, str], list[tuple[str, str, int]]] = {}
    for arch, scale, size in keys:
        try:
            structure = _structure(build_on(arch, scale, size, NUM_CLASSES, "meta"))
        except (NotImplementedError, RuntimeError):
            structure = arch  # counted on its own
        groups.setdefault((scale, size, structure), []).append((arch, scale, size))
    return list(groups.values())


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)  # one per worker process: the workers share the CPUs


def count_all(keys: list[tuple[str, str, int]], *, jobs: int = 1,
              progress=None) -> list[FlopCount]:
    """The counts of ``keys`` ``(arch, scale, image_size)``, in their order: networks of one
    structure counted once, in ``jobs`` worker processes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    groups = _groups(keys)
    found: dict[tuple[str, str, int], FlopCount] = {}
    if jobs <= 1:
        results = map(_count_group, groups)
    else:
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_one_thread)
        results = pool.map(_count_group, groups)
    for counts in results:
        for c in counts:
            found[(c.arch, c.scale, c.image_size)] = c
            if progress:
                progress(c)
    if jobs > 1:
        pool.shutdown()
    return [found[key] for key in keys]


# --------------------------------------------------------------------------- the table


def write_flops(path: Path = FLOPS_PATH, *, archs: list[str] | None = None,
                sizes: list[int] | None = None, jobs: int = 1,
                progress=None) -> list[FlopCount]:
    """Count every architecture (or ``archs``) at both scales and every image size (or
    ``sizes``) and write the table with the sources' hashes to ``path`` (atomically)."""
    from .registry import list_models

    keys = [(arch, scale, size) for arch in archs or list_models() for scale in SCALES
            for size in sizes or image_sizes()]
    counts = count_all(keys, jobs=jobs, progress=progress)
    rows = ",\n".join(f"  {json.dumps(asdict(c))}" for c in counts)
    text = (f'{{"source_sha256": "{source_hash(path.parent)}",\n'
            f' "counter_sha256": "{counter_hash()}",\n "num_classes": {NUM_CLASSES},\n'
            f' "counts": [\n{rows}\n]}}\n')
    write_text(text, path)
    return counts


def read_flops(path: Path = FLOPS_PATH) -> dict[tuple[str, str, int], FlopCount] | None:
    """The table of ``path`` keyed by ``(arch, scale, image_size)`` if it matches the current
    model sources and counter, else None (stale, missing or unreadable)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        if (data["source_sha256"] != source_hash(path.parent)
                or data["counter_sha256"] != counter_hash()):
            return None
        counts = [FlopCount(**row) for row in data["counts"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {(c.arch, c.scale, c.image_size): c for c in counts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m robustarch.models.flops",
        description=f"Count the FLOPs per image of every registered architecture and write "
                    f"{FLOPS_PATH.name} next to catalog.json.")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: one per CPU)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    written = write_flops(jobs=args.jobs, progress=lambda c: print(
        f"{c.arch:>16} {c.scale:>5} {c.image_size:>3} px: forward {c.forward / 1e9:9.3f} "
        f"GFLOP, attack step {c.attack_step / c.forward:.2f}x, training step "
        f"{c.train_step / c.forward:.2f}x ({c.device})", file=sys.stderr, flush=True))
    print(f"wrote {FLOPS_PATH} ({len(written)} counts, {time.perf_counter() - start:.0f} s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
