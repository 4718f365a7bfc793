"""Batched, on-device training augmentations: crop+flip, RandomResizedCrop+flip, AutoAugment.

The training loader keeps the whole split as one uint8 tensor on the training device and gathers
batches by index, so augmentation has to run on whole batches there: no PIL, no per-image Python
loop, no worker processes. Every random decision is made per sample (each image gets its own crop,
flip, sub-policy, ...) and drawn from the ``torch.Generator`` passed in, which must live on the
same device as the data, so a run is reproducible from its seed.

The semantics follow torchvision (``RandomCrop(padding=4)`` + ``RandomHorizontalFlip``,
``RandomResizedCrop`` + ``RandomHorizontalFlip``, ``v2.AutoAugment``); the tests check them against
torchvision itself. The random *streams* differ from torchvision's (we draw vectors, it draws
scalars), so the same seed gives different, identically distributed, augmentations.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["autoaugment", "random_crop_flip", "random_resized_crop_flip"]


def _check_batch(x: Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")


# --------------------------------------------------------------------------- crop + flip


def random_crop_flip(x: Tensor, *, padding: int = 4, generator: torch.Generator | None = None
                     ) -> Tensor:
    """Per-sample random crop with zero padding, then horizontal flip with p=0.5 (CIFAR recipe).

    Equivalent to torchvision ``RandomCrop(H, padding=padding)`` (fill 0) followed by
    ``RandomHorizontalFlip()``, applied independently to every image of ``x`` (B, C, H, W), uint8
    or float. Implemented as one ``torch.gather`` over the zero-padded batch (planes flattened)
    with per-sample pixel indices (the flip folded into the column indices): no loop over the
    batch. Draws, in order: offsets ``(B, 2)`` (row, column) in ``[0, 2*padding]``, then the flip
    coin ``(B,)``. Returns a new tensor of the same shape, dtype and device.
    """
    _check_batch(x)
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    b, c, h, w = x.shape
    dev = x.device
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator, device=dev)
    flip = torch.rand(b, generator=generator, device=dev) < 0.5
    if b == 0:
        return x.clone()
    padded = F.pad(x, (padding, padding, padding, padding)) if padding else x
    hp, wp = h + 2 * padding, w + 2 * padding
    rows = offsets[:, :1] + torch.arange(h, device=dev)  # (B, H)
    cols_fwd = torch.arange(w, device=dev)
    cols = offsets[:, 1:] + torch.where(flip[:, None], w - 1 - cols_fwd, cols_fwd)  # (B, W)
    # One gather over the flattened padded plane (several times faster than two gathers on CPU).
    flat_idx = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.reshape(b, c, hp * wp).gather(2, flat_idx).view(b, c, h, w)


# --------------------------------------------------------------------------- resized crop + flip


def _sample_resized_crop_boxes(
    batch: int,
    height: int,
    width: int,
    scale: Sequence[float],
    ratio: Sequence[float],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Crop boxes ``(B, 4)`` int64 ``[top, left, h, w]`` sampled like ``RandomResizedCrop``.

    Same algorithm as torchvision's ``RandomResizedCrop.get_params``, its 10 tries done at once:
    area fraction uniform in ``scale``, aspect ratio log-uniform in ``ratio``, ``w, h`` rounded;
    the first try that fits is taken, at a uniform position; if none fits, the ratio-clamped
    center crop.
    Draws, in order: area ``(B, 10)``, log-ratio ``(B, 10)``, position ``(B, 2)``.
    """
    if scale[0] > scale[1] or ratio[0] > ratio[1]:
        raise ValueError(f"scale and ratio must be (min, max), got {scale} and {ratio}")
    f64 = torch.float64
    area = float(height * width)
    u_area = torch.rand(batch, 10, generator=generator, device=device, dtype=f64)
    u_ratio = torch.rand(batch, 10, generator=generator, device=device, dtype=f64)
    u_pos = torch.rand(batch, 2, generator=generator, device=device, dtype=f64)

    target_area = area * (scale[0] + (scale[1] - scale[0]) * u_area)
    log_r0, log_r1 = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_r0 + (log_r1 - log_r0) * u_ratio)
    ws = torch.sqrt(target_area * aspect).round().long()
    hs = torch.sqrt(target_area / aspect).round().long()
    fits = (ws > 0) & (ws <= width) & (hs > 0) & (hs <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # first fitting try (0 if none)
    w = ws.gather(1, first).squeeze(1)
    h = hs.gather(1, first).squeeze(1)
    top = (u_pos[:, 0] * (height - h + 1)).floor().long().clamp(max=height - h)
    left = (u_pos[:, 1] * (width - w + 1)).floor().long().clamp(max=width - w)

    # Fallback: center crop with the aspect ratio clamped into `ratio` (as torchvision).
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fw, fh = int(round(height * max(ratio))), height
    else:
        fw, fh = width, height
    fallback = torch.tensor([(height - fh) // 2, (width - fw) // 2, fh, fw], device=device)
    boxes = torch.stack([top, left, h, w], dim=1)
    return torch.where(fits.any(dim=1, keepdim=True), boxes, fallback)


def random_resized_crop_flip(
    x: Tensor,
    *,
    size: int | Sequence[int] = 224,
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per-sample ``RandomResizedCrop(size, scale, ratio)`` + horizontal flip p=0.5 (ImageNet).

    Boxes are sampled as torchvision does (see ``_sample_resized_crop_boxes``); then one batched
    ``affine_grid``/``grid_sample`` (bilinear, half-pixel centers, border clamping) maps each box
    onto the ``size`` output, with the flip folded into the affine matrix. Differences from
    torchvision, all sub-pixel or downscale-only: no antialiasing when a crop is *downscaled*
    (torchvision's tensor resize antialiases by default), and output samples within half an input
    pixel of a crop edge may blend in the pixel just outside the crop instead of clamping at the
    crop edge.
    uint8 in gives uint8 out (rounded, clamped); float in gives the same float dtype out. Draws:
    the box draws, then the flip coin ``(B,)``. Returns (B, C, size, size).
    """
    _check_batch(x)
    oh, ow = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    b, c, h, w = x.shape
    dev = x.device
    boxes = _sample_resized_crop_boxes(b, h, w, scale, ratio, generator=generator, device=dev)
    flip = torch.rand(b, generator=generator, device=dev) < 0.5

    work_dtype = x.dtype if x.is_floating_point() else torch.float32
    top, left, bh, bw = boxes.to(work_dtype).unbind(1)
    # Output normalized coordinate u in [-1, 1] -> input normalized coordinate (align_corners
    # False): x_in = (bw / W) * u + (2 * left + bw) / W - 1, and u -> -u for a flip.
    theta = torch.zeros(b, 2, 3, dtype=work_dtype, device=dev)
    theta[:, 0, 0] = torch.where(flip, -bw, bw) / w
    theta[:, 0, 2] = (2 * left + bw) / w - 1
    theta[:, 1, 1] = bh / h
    theta[:, 1, 2] = (2 * top + bh) / h - 1
    if b == 0:
        return x.new_empty((0, c, oh, ow))
    grid = F.affine_grid(theta, [b, c, oh, ow], align_corners=False)
    out = F.grid_sample(x.to(work_dtype), grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    if x.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out.to(x.dtype)


# --------------------------------------------------------------------------- AutoAugment

# The published AutoAugment sub-policies (Cubuk et al., 2019, appendix), in torchvision's naming
# and order: ((op, probability, magnitude bin or None), (op, probability, magnitude bin or None)).
_POLICIES: dict[str, tuple[tuple[tuple[str, float, int | None], ...], ...]] = {
    "imagenet": (
        (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
        (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
        (("Solarize", 0.6, 3), ("Equalize", 0.6, None)),
        (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
        (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
        (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
        (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
        (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
        (("Equalize", 0.0, None), ("Equalize", 0.8, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
        (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
        (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
        (("ShearX", 0.6, 5), ("Equalize", 1.0, None)),
        (("Color", 0.4, 0), ("Equalize", 0.6, None)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
    ),
    "cifar10": (
        (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
        (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
        (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
        (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
        (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
        (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
        (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
        (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
        (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
        (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
        (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
        (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
        (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
        (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
        (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
        (("Color", 0.9, 9), ("Equalize", 0.6, None)),
        (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
        (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
        (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
        (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
        (("Equalize", 0.8, None), ("Invert", 0.1, None)),
        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
    ),
}

_NUM_BINS = 10
# Ops whose magnitude gets a random sign on each application.
_SIGNED_OPS = frozenset({"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
                         "Color", "Contrast", "Sharpness"})


def _magnitude(op: str, bin_: int | None, height: int, width: int) -> float:
    """Unsigned magnitude of ``op`` at ``bin_`` (of 10), computed exactly as torchvision v2 does
    (same float32 ``linspace`` values), so thresholds and shifts match bit for bit."""
    if bin_ is None:
        return 0.0
    n = _NUM_BINS
    if op in ("ShearX", "ShearY"):
        mags = torch.linspace(0.0, 0.3, n)
    elif op == "TranslateX":
        mags = torch.linspace(0.0, 150.0 / 331.0 * width, n)
    elif op == "TranslateY":
        mags = torch.linspace(0.0, 150.0 / 331.0 * height, n)
    elif op == "Rotate":
        mags = torch.linspace(0.0, 30.0, n)
    elif op in ("Brightness", "Color", "Contrast", "Sharpness"):
        mags = torch.linspace(0.0, 0.9, n)
    elif op == "Posterize":
        mags = (8 - (torch.arange(n) / ((n - 1) / 4))).round().int()
    elif op == "Solarize":
        return 255.0 * float(torch.linspace(1.0, 0.0, n)[bin_])  # uint8 bound x fraction, as v2
    else:
        return 0.0
    return float(mags[bin_])


def _apply_op(x: Tensor, op: str, magnitude: float) -> Tensor:
    """Apply one AutoAugment op with a fixed (signed) magnitude to a whole uint8 batch.

    Mirrors torchvision v2 ``AutoAugment``'s op dispatch with its defaults (nearest
    interpolation, fill 0 outside the image), using ``torchvision.transforms.v2.functional``,
    whose kernels treat leading dimensions as a batch of independent images.
    """
    # torchvision costs ~1.7 s of CPU to import: only AutoAugment pays it, not every job
    import torchvision.transforms.v2.functional as TF
    from torchvision.transforms.v2 import InterpolationMode

    nearest = InterpolationMode.NEAREST
    if op == "ShearX":
        return TF.affine(x, angle=0.0, translate=[0, 0], scale=1.0,
                         shear=[math.degrees(math.atan(magnitude)), 0.0],
                         interpolation=nearest, fill=None, center=[0, 0])
    if op == "ShearY":
        return TF.affine(x, angle=0.0, translate=[0, 0], scale=1.0,
                         shear=[0.0, math.degrees(math.atan(magnitude))],
                         interpolation=nearest, fill=None, center=[0, 0])
    if op == "TranslateX":
        return TF.affine(x, angle=0.0, translate=[int(magnitude), 0], scale=1.0,
                         shear=[0.0, 0.0], interpolation=nearest, fill=None)
    if op == "TranslateY":
        return TF.affine(x, angle=0.0, translate=[0, int(magnitude)], scale=1.0,
                         shear=[0.0, 0.0], interpolation=nearest, fill=None)
    if op == "Rotate":
        return TF.rotate(x, angle=magnitude, interpolation=nearest, fill=None)
    if op == "Brightness":
        return TF.adjust_brightness(x, brightness_factor=1.0 + magnitude)
    if op == "Color":
        return TF.adjust_saturation(x, saturation_factor=1.0 + magnitude)
    if op == "Contrast":
        return TF.adjust_contrast(x, contrast_factor=1.0 + magnitude)
    if op == "Sharpness":
        return TF.adjust_sharpness(x, sharpness_factor=1.0 + magnitude)
    if op == "Posterize":
        return TF.posterize(x, bits=int(magnitude))
    if op == "Solarize":
        return TF.solarize(x, threshold=magnitude)
    if op == "AutoContrast":
        return TF.autocontrast(x)
    if op == "Equalize":
        return TF.equalize(x)
    if op == "Invert":
        return TF.invert(x)
    raise ValueError(f"unknown AutoAugment op {op!r}")


def _policy_table(policy: str) -> tuple[tuple[tuple[str, float, int | None], ...], ...]:
    try:
        return _POLICIES[policy]
    except KeyError:
        raise ValueError(
            f"unknown AutoAugment policy {policy!r}; valid policies: {sorted(_POLICIES)}"
        ) from None


@functools.lru_cache(maxsize=32)
def _policy_probs(policy: str, device: torch.device | None) -> Tensor:
    """(25, 2) application probabilities of the sub-policies' ops, cached per device."""
    return torch.tensor([[p for _, p, _ in sp] for sp in _policy_table(policy)], device=device)


@functools.lru_cache(maxsize=32)
def _policy_actions(policy: str, height: int, width: int, device: torch.device
                    ) -> tuple[tuple[tuple[str, float], ...], Tensor]:
    """Distinct actions ``(op, signed magnitude)`` of a policy for HxW images, and a lookup
    ``(sub-policy, slot, negated) -> action id`` (on ``device``), cached per policy/size/device."""
    table = _policy_table(policy)
    actions: list[tuple[str, float]] = []
    lut = torch.empty(len(table), 2, 2, dtype=torch.long)
    for s, sub_policy in enumerate(table):
        for k, (op, _, bin_) in enumerate(sub_policy):
            mag = _magnitude(op, bin_, height, width)
            for neg in (0, 1):
                action = (op, -mag if neg and op in _SIGNED_OPS else mag)  # -0.0 == 0.0: merged
                if action not in actions:
                    actions.append(action)
                lut[s, k, neg] = actions.index(action)
    return tuple(actions), lut.to(device)


def _sample_autoaugment_params(
    batch: int, policy: str, *, generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample AutoAugment decisions: ``(sub_policy (B,), applied (B, 2), negated (B, 2))``.

    Same distribution as torchvision: a uniform sub-policy; op ``k`` applied iff ``U <= p_k``;
    a signed op's magnitude negated iff ``U <= 0.5``. ``negated`` is drawn for every slot (it is
    ignored for unsigned or unapplied ops). Draws, in order: sub-policy, apply, sign.
    """
    table = _policy_table(policy)
    sub = torch.randint(0, len(table), (batch,), generator=generator, device=device)
    probs = _policy_probs(policy, torch.device(device) if device is not None else None)
    applied = torch.rand(batch, 2, generator=generator, device=device) <= probs[sub]
    negated = torch.rand(batch, 2, generator=generator, device=device) <= 0.5
    return sub, applied, negated


def autoaugment(x: Tensor, *, policy: str, generator: torch.Generator | None = None) -> Tensor:
    """AutoAugment (Cubuk et al., 2019), ``policy`` "cifar10" or "imagenet", per sample, batched.

    Each image draws its own sub-policy; each of the sub-policy's two ops is applied with its
    probability, signed magnitudes with a random sign, with torchvision v2 ``AutoAugment``'s op
    semantics (10 magnitude bins, nearest interpolation, fill 0). x: uint8 (B, C, H, W).

    Batching: samples are grouped by (op slot, op, signed magnitude) -- a merge of the
    (sub-policy, slot, sign) groups that share an op and magnitude -- and each group is transformed
    at once by a v2 functional op; slot 0 groups run before slot 1 groups. The grouping is a device
    sort plus one small device-to-host copy of the group sizes (one sync per call).
    """
    _check_batch(x)
    _policy_table(policy)  # validate the name first
    if x.dtype != torch.uint8:
        raise TypeError(f"autoaugment expects a uint8 batch, got {x.dtype}")
    b, _, h, w = x.shape
    dev = x.device
    sub, applied, negated = _sample_autoaugment_params(b, policy, generator=generator, device=dev)

    actions, lut = _policy_actions(policy, h, w, dev)
    skip = len(actions)  # group key for "op not applied"
    slots = torch.arange(2, device=dev)
    keys = torch.where(applied, lut[sub[:, None], slots, negated.long()], skip)
    keys = keys + slots * (skip + 1)  # slot 1 keys sort after all slot 0 keys
    flat_keys = keys.t().reshape(-1)  # (2B,): slot-major
    order = torch.argsort(flat_keys, stable=True) % b  # sample indices, grouped by key
    counts = torch.bincount(flat_keys, minlength=2 * (skip + 1)).tolist()  # the one sync

    out = x.clone()
    start = 0
    for key, count in enumerate(counts):
        action_id = key % (skip + 1)
        if count and action_id != skip:
            idx = order[start:start + count]
            op, mag = actions[action_id]
            out.index_copy_(0, idx, _apply_op(out.index_select(0, idx), op, mag))
        start += count
    return out
