"""Batched, on-device training augmentations: crop+flip, RandomResizedCrop(+flip), AutoAugment.

The training loader keeps the whole split as one uint8 tensor on the training device and gathers
batches by index, so augmentation has to run on whole batches there: no PIL, no per-image Python
loop, no worker processes. Every random decision is made per sample (each image gets its own crop,
flip, sub-policy, ...) and drawn from the ``torch.Generator`` passed in, which must live on the
same device as the data, so a run is reproducible from its seed.

The crops follow torchvision (``RandomCrop(padding=4)`` + ``RandomHorizontalFlip``,
``RandomResizedCrop`` (+ ``RandomHorizontalFlip``)); AutoAugment has two implementations: the
authors' (their code's PIL ``CIFAR10Policy``/``ImageNetPolicy``, reproduced op by op on tensors)
and torchvision's ``v2.AutoAugment``. The tests check each against its reference (torchvision,
or PIL driven as the authors' code drives it). The random *streams* differ from the references'
(we draw vectors, they draw scalars), so the same seed gives different, identically distributed,
augmentations.
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
    height: int | Tensor,
    width: int | Tensor,
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
    center crop. ``height`` and ``width`` are the image size, or ``(B,)`` int64 tensors of one
    size per image (full frames of different shapes).
    Draws, in order: area ``(B, 10)``, log-ratio ``(B, 10)``, position ``(B, 2)``.
    """
    if scale[0] > scale[1] or ratio[0] > ratio[1]:
        raise ValueError(f"scale and ratio must be (min, max), got {scale} and {ratio}")
    f64 = torch.float64
    per_image = isinstance(height, Tensor)
    if per_image:  # (B, 1) columns against the (B, 10) tries
        height, width = height.to(device).view(-1, 1), width.to(device).view(-1, 1)
        area = (height * width).to(f64)
    else:
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
    if per_image:
        height, width = height.squeeze(1), width.squeeze(1)
    top = (u_pos[:, 0] * (height - h + 1)).floor().long().clamp(max=height - h)
    left = (u_pos[:, 1] * (width - w + 1)).floor().long().clamp(max=width - w)
    boxes = torch.stack([top, left, h, w], dim=1)
    fallback = _fallback_boxes(height, width, ratio, device) if per_image else (
        _fallback_box(height, width, ratio, device))
    return torch.where(fits.any(dim=1, keepdim=True), boxes, fallback)


def _fallback_box(height: int, width: int, ratio: Sequence[float],
                  device: torch.device | str | None) -> Tensor:
    """torchvision's fallback: the center crop with the aspect ratio clamped into ``ratio``."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fw, fh = int(round(height * max(ratio))), height
    else:
        fw, fh = width, height
    return torch.tensor([(height - fh) // 2, (width - fw) // 2, fh, fw], device=device)


def _fallback_boxes(height: Tensor, width: Tensor, ratio: Sequence[float],
                    device: torch.device | str | None) -> Tensor:
    """:func:`_fallback_box` per image: ``(B, 4)`` for ``(B,)`` heights and widths (round half
    to even in both, as Python's ``round``)."""
    h64, w64 = height.to(torch.float64), width.to(torch.float64)
    in_ratio = w64 / h64
    narrow, wide = in_ratio < min(ratio), in_ratio > max(ratio)
    fh = torch.where(narrow, (w64 / min(ratio)).round().long(), height)
    fw = torch.where(wide, (h64 * max(ratio)).round().long(), width)
    return torch.stack([(height - fh) // 2, (width - fw) // 2, fh, fw], dim=1).to(device)


def random_resized_crop_flip(
    x: Tensor,
    *,
    size: int | Sequence[int] = 224,
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    flip: bool = True,
    generator: torch.Generator | None = None,
    sizes: Tensor | None = None,
) -> Tensor:
    """Per-sample ``RandomResizedCrop(size, scale, ratio)`` + horizontal flip p=0.5 (ImageNet);
    ``flip=False``: the crop alone (the authors' ImageNette transform has no flip).

    Boxes are sampled as torchvision does (see ``_sample_resized_crop_boxes``); then one batched
    ``grid_sample`` (bilinear, half-pixel centers, border clamping) maps each box onto the
    ``size`` output, with the flip folded into the sampling grid. Differences from
    torchvision, all sub-pixel or downscale-only: no antialiasing when a crop is *downscaled*
    (torchvision's tensor resize antialiases by default), and output samples within half an input
    pixel of a crop edge may blend in the pixel just outside the crop instead of clamping at the
    crop edge.

    ``sizes`` (B, 2) int64: ``x`` holds full frames of different shapes on a padded canvas, in
    the layout of :mod:`robustarch.data.splits` (top left, portrait frames transposed) with
    their true (height, width); boxes are then sampled within each frame's true size and the
    samples clamped to its true border, so no crop reaches the padding (``_crop_boxes``).
    uint8 in gives uint8 out (rounded, clamped); float in gives the same float dtype out. Draws:
    the box draws, then (with ``flip``) the flip coin ``(B,)``. Returns (B, C, size, size).
    """
    _check_batch(x)
    b, c, h, w = x.shape
    dev = x.device
    if sizes is None:
        boxes = _sample_resized_crop_boxes(b, h, w, scale, ratio, generator=generator,
                                           device=dev)
    else:
        sizes = sizes.to(dev)
        boxes = _sample_resized_crop_boxes(b, sizes[:, 0], sizes[:, 1], scale, ratio,
                                           generator=generator, device=dev)
    if flip:
        flipped = torch.rand(b, generator=generator, device=dev) < 0.5
    else:
        flipped = torch.zeros(b, dtype=torch.bool, device=dev)
    return _crop_boxes(x, boxes, size, flipped, sizes)


def _crop_boxes(x: Tensor, boxes: Tensor, size: int | Sequence[int], flipped: Tensor,
                sizes: Tensor | None = None) -> Tensor:
    """Each image's ``boxes`` row ``[top, left, h, w]`` resized to ``size`` (bilinear), mirrored
    where ``flipped``; ``sizes``: full frames (see :func:`random_resized_crop_flip`)."""
    oh, ow = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    b, c, h, w = x.shape
    if b == 0:
        return x.new_empty((0, c, oh, ow))
    work_dtype = x.dtype if x.is_floating_point() else torch.float32
    if sizes is None:
        grid = _affine_grid(boxes, flipped, b, c, h, w, oh, ow, work_dtype)
    else:
        grid = _frame_grid(boxes, flipped, sizes, h, w, oh, ow, work_dtype)
    out = F.grid_sample(x.to(work_dtype), grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    if x.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out.to(x.dtype)


def _affine_grid(boxes: Tensor, flipped: Tensor, b: int, c: int, h: int, w: int, oh: int,
                 ow: int, dtype: torch.dtype) -> Tensor:
    """The sampling grid of boxes in whole images: one affine map per image."""
    top, left, bh, bw = boxes.to(dtype).unbind(1)
    # Output normalized coordinate u in [-1, 1] -> input normalized coordinate (align_corners
    # False): x_in = (bw / W) * u + (2 * left + bw) / W - 1, and u -> -u for a flip.
    theta = torch.zeros(b, 2, 3, dtype=dtype, device=boxes.device)
    theta[:, 0, 0] = torch.where(flipped, -bw, bw) / w
    theta[:, 0, 2] = (2 * left + bw) / w - 1
    theta[:, 1, 1] = bh / h
    theta[:, 1, 2] = (2 * top + bh) / h - 1
    return F.affine_grid(theta, [b, c, oh, ow], align_corners=False)


def _frame_grid(boxes: Tensor, flipped: Tensor, sizes: Tensor, rows: int, cols: int, oh: int,
                ow: int, dtype: torch.dtype) -> Tensor:
    """The sampling grid of boxes in full frames on a ``rows`` x ``cols`` canvas: the same
    half-pixel map as :func:`_affine_grid`, clamped to each frame's true border (what
    ``padding_mode="border"`` does at a whole image's), with the axes swapped for frames
    stored transposed."""
    dev = boxes.device
    top, left, bh, bw = boxes.to(dtype).unbind(1)
    fh, fw = sizes.to(dtype).unbind(1)
    v = (torch.arange(oh, device=dev, dtype=dtype) + 0.5) / oh  # (oh,) fractions down the box
    u = (torch.arange(ow, device=dev, dtype=dtype) + 0.5) / ow
    u = torch.where(flipped[:, None], 1 - u, u)  # (B, ow)
    # Pixel coordinates in the frame (pixel centers at integers), clamped inside the frame.
    ys = torch.minimum((top[:, None] + bh[:, None] * v - 0.5).clamp_min(0), (fh - 1)[:, None])
    xs = torch.minimum((left[:, None] + bw[:, None] * u - 0.5).clamp_min(0), (fw - 1)[:, None])
    ys, xs = ys[:, :, None].expand(-1, oh, ow), xs[:, None, :].expand(-1, oh, ow)
    transposed = (sizes[:, 0] > sizes[:, 1])[:, None, None]
    canvas_row = torch.where(transposed, xs, ys)
    canvas_col = torch.where(transposed, ys, xs)
    # grid_sample's normalized coordinates (align_corners False): (2p + 1) / n - 1.
    return torch.stack([(2 * canvas_col + 1) / cols - 1, (2 * canvas_row + 1) / rows - 1], dim=-1)


# --------------------------------------------------------------------------- AutoAugment

# Two AutoAugment implementations ("impl"): the authors' (their code's PIL sub-policies, as
# DeepVoltaire's AutoAugment port: gray fill, bicubic shear, positive-only rotation, 1 +/- m
# enhancement factors, their CIFAR-10 and ImageNet tables) and torchvision's v2 AutoAugment.
# Tables: ((op, probability, magnitude bin), (op, probability, magnitude bin)) per sub-policy.
SubPolicy = tuple[tuple[str, float, int | None], tuple[str, float, int | None]]

_TORCHVISION_POLICIES: dict[str, tuple[SubPolicy, ...]] = {
    # The published sub-policies (Cubuk et al., 2019, appendix), in torchvision's naming and order.
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

_AUTHORS_POLICIES: dict[str, tuple[SubPolicy, ...]] = {
    # The authors' ImageNetPolicy (aug/autoaugment.py): the same 25 sub-policies as above. They
    # keep a magnitude bin for every op; AutoContrast, Equalize and Invert ignore it.
    "imagenet": (
        (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
        (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
        (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
        (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
        (("Equalize", 0.4, 4), ("Rotate", 0.8, 8)),
        (("Solarize", 0.6, 3), ("Equalize", 0.6, 7)),
        (("Posterize", 0.8, 5), ("Equalize", 1.0, 2)),
        (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
        (("Equalize", 0.6, 8), ("Posterize", 0.4, 6)),
        (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
        (("Rotate", 0.4, 9), ("Equalize", 0.6, 2)),
        (("Equalize", 0.0, 7), ("Equalize", 0.8, 8)),
        (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
        (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
        (("Sharpness", 0.4, 7), ("Invert", 0.6, 8)),
        (("ShearX", 0.6, 5), ("Equalize", 1.0, 9)),
        (("Color", 0.4, 0), ("Equalize", 0.6, 3)),
        (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
        (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
    ),
    # The authors' CIFAR10Policy: torchvision's table except sub-policy 17, whose second
    # Equalize has probability 0.8 (torchvision: 0.6).
    "cifar10": (
        (("Invert", 0.1, 7), ("Contrast", 0.2, 6)),
        (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
        (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
        (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.5, 8), ("Equalize", 0.9, 2)),
        (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
        (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
        (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
        (("Equalize", 0.6, 5), ("Equalize", 0.5, 1)),
        (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
        (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
        (("Equalize", 0.3, 7), ("AutoContrast", 0.4, 8)),
        (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
        (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
        (("Solarize", 0.5, 2), ("Invert", 0.0, 3)),
        (("Equalize", 0.2, 0), ("AutoContrast", 0.6, 0)),
        (("Equalize", 0.2, 8), ("Equalize", 0.8, 4)),
        (("Color", 0.9, 9), ("Equalize", 0.6, 6)),
        (("AutoContrast", 0.8, 4), ("Solarize", 0.2, 8)),
        (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
        (("Solarize", 0.4, 5), ("AutoContrast", 0.9, 3)),
        (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.9, 2), ("Solarize", 0.8, 3)),
        (("Equalize", 0.8, 8), ("Invert", 0.1, 3)),
        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, 1)),
    ),
}

_POLICIES = {"authors": _AUTHORS_POLICIES, "torchvision": _TORCHVISION_POLICIES}
IMPLEMENTATIONS = tuple(_POLICIES)

_NUM_BINS = 10
# Ops whose magnitude gets a random sign on each application. The authors' rotation has none:
# its angle is always positive (counter-clockwise).
_ENHANCE_OPS = frozenset({"Brightness", "Color", "Contrast", "Sharpness"})
_SIGNED_OPS = {
    "torchvision": frozenset({"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate",
                              *_ENHANCE_OPS}),
    "authors": frozenset({"ShearX", "ShearY", "TranslateX", "TranslateY", *_ENHANCE_OPS}),
}


def _check_impl(impl: str) -> None:
    if impl not in _POLICIES:
        raise ValueError(f"unknown AutoAugment implementation {impl!r}; valid: "
                         f"{', '.join(IMPLEMENTATIONS)}")


def _torchvision_magnitude(op: str, bin_: int | None, height: int, width: int) -> float:
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
    elif op in _ENHANCE_OPS:
        mags = torch.linspace(0.0, 0.9, n)
    elif op == "Posterize":
        mags = (8 - (torch.arange(n) / ((n - 1) / 4))).round().int()
    elif op == "Solarize":
        return 255.0 * float(torch.linspace(1.0, 0.0, n)[bin_])  # uint8 bound x fraction, as v2
    else:
        return 0.0
    return float(mags[bin_])


def _authors_magnitude(op: str, bin_: int | None, height: int, width: int) -> float:
    """Unsigned magnitude of ``op`` at ``bin_`` as the authors' ``SubPolicy`` computes it (numpy
    float64 ``linspace`` over 10 bins): shear 0-0.3, translation 0-150/331 of the image side in
    pixels, rotation 0-30 degrees, enhancement m in 0-0.9 (factor 1 +/- m), posterize 8 -> 4
    bits (rounded), solarize threshold 256 -> 0."""
    import numpy as np

    n = _NUM_BINS
    if bin_ is None or op in ("AutoContrast", "Equalize", "Invert"):
        return 0.0
    if op in ("ShearX", "ShearY"):
        return float(np.linspace(0, 0.3, n)[bin_])
    if op in ("TranslateX", "TranslateY"):
        # their shift is magnitude * img.size[0 or 1] (width for x, height for y)
        return float(np.linspace(0, 150 / 331, n)[bin_]) * (width if op == "TranslateX"
                                                             else height)
    if op == "Rotate":
        return float(np.linspace(0, 30, n)[bin_])
    if op in _ENHANCE_OPS:
        return float(np.linspace(0.0, 0.9, n)[bin_])
    if op == "Posterize":
        return float(np.round(np.linspace(8, 4, n), 0).astype(int)[bin_])
    if op == "Solarize":
        return float(np.linspace(256, 0, n)[bin_])
    raise ValueError(f"unknown AutoAugment op {op!r}")


def _magnitude(impl: str, op: str, bin_: int | None, height: int, width: int) -> float:
    """Unsigned magnitude of ``op`` at ``bin_`` for HxW images under ``impl``."""
    _check_impl(impl)
    if impl == "torchvision":
        return _torchvision_magnitude(op, bin_, height, width)
    return _authors_magnitude(op, bin_, height, width)


def _torchvision_op(x: Tensor, op: str, magnitude: float) -> Tensor:
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


# ----------------------------------------------------- the authors' PIL semantics, on tensors
#
# Each op reproduces what the authors' code does to a PIL RGB image (Pillow's C kernels, the same
# in Pillow 8.2, their pin, and today's): the same integer arithmetic, the same float32 blend,
# the same truncations, so that results match Pillow's to the gray level. The geometric ops'
# coordinates are computed once per group (one magnitude) and shared by its images.

_FILL = 128  # the authors' fillcolor (128, 128, 128) for shear/translate/rotate


def _resample(x: Tensor, rows: Tensor, cols: Tensor, inside: Tensor) -> Tensor:
    """``out[..., i, j] = x[..., rows[i, j], cols[i, j]]`` where ``inside``, else the gray fill;
    ``rows``/``cols``/``inside`` are (H, W) and shared by the batch."""
    b, c, h, w = x.shape
    flat = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).reshape(-1)
    out = x.reshape(b, c, h * w).index_select(2, flat).view(b, c, h, w)
    return torch.where(inside, out, torch.full((), _FILL, dtype=x.dtype, device=x.device))


@functools.lru_cache(maxsize=256)
def _translate_line(n: int, shift: float, device: torch.device) -> tuple[Tensor, Tensor]:
    """Source indices of a line of ``n`` pixels shifted by ``shift``, and which are inside."""
    src, position = [], shift + 0.5
    for _ in range(n):  # Pillow adds 1.0 per pixel; COORD(v) = -1 for v < 0, else int(v)
        src.append(-1 if position < 0 else int(position))
        position += 1.0
    line = torch.tensor(src, device=device)
    return line, (line >= 0) & (line < n)


def _pil_translate(x: Tensor, shift: float, axis: int) -> Tensor:
    """Pillow's nearest-neighbour affine ``(1, 0, tx, 0, 1, ty)`` (its scaling fast path): the
    source of output index i is ``COORD(t + 0.5 + i)``, accumulated as Pillow does; outside:
    gray."""
    h, w = x.shape[-2:]
    dev = x.device
    line, inside_line = _translate_line((h, w)[axis], shift, dev)
    if axis == 1:
        rows = torch.arange(h, device=dev)[:, None].expand(h, w)
        cols, inside = line[None, :].expand(h, w), inside_line[None, :].expand(h, w)
    else:
        rows, inside = line[:, None].expand(h, w), inside_line[:, None].expand(h, w)
        cols = torch.arange(w, device=dev)[None, :].expand(h, w)
    return _resample(x, rows, cols, inside)


def _pil_rotate(x: Tensor, degrees: float) -> Tensor:
    """``img.convert("RGBA").rotate(degrees)`` composited on gray: Pillow's rotation matrix about
    the image centre, sampled with its 16.16 fixed-point nearest-neighbour affine; outside: gray.
    """
    h, w = x.shape[-2:]
    angle = degrees % 360.0
    if angle == 0:
        return x.clone()
    if angle == 180:  # Pillow's transpose fast path (no magnitude here reaches it)
        return x.flip(-1, -2)
    return _resample(x, *_rotation_sources(h, w, angle, x.device))


@functools.lru_cache(maxsize=256)
def _rotation_sources(h: int, w: int, angle: float, device: torch.device
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """(rows, cols, inside) of Pillow's rotation by ``angle`` degrees of an HxW image."""
    a = -math.radians(angle)
    m = [round(math.cos(a), 15), round(math.sin(a), 15), 0.0,
         round(-math.sin(a), 15), round(math.cos(a), 15), 0.0]
    cx, cy = w / 2.0, h / 2.0
    m[2] = m[0] * -cx + m[1] * -cy + m[2] + cx
    m[5] = m[3] * -cx + m[4] * -cy + m[5] + cy

    def fix(v: float) -> int:
        return math.floor(v * 65536.0 + 0.5)

    a0, a1, a3, a4 = fix(m[0]), fix(m[1]), fix(m[3]), fix(m[4])
    a2, a5 = fix(m[2] + m[0] * 0.5 + m[1] * 0.5), fix(m[5] + m[3] * 0.5 + m[4] * 0.5)
    ys = torch.arange(h, device=device, dtype=torch.int64)[:, None]
    xs = torch.arange(w, device=device, dtype=torch.int64)[None, :]
    cols = torch.div(a2 + ys * a1 + xs * a0, 65536, rounding_mode="floor")  # C's xx >> 16
    rows = torch.div(a5 + ys * a4 + xs * a3, 65536, rounding_mode="floor")
    return rows, cols, (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)


def _cubic(v1: Tensor, v2: Tensor, v3: Tensor, v4: Tensor, d: Tensor) -> Tensor:
    # Pillow's BICUBIC macro (Geometry.c): Keys' cubic with a = -1, evaluated in this order.
    p2 = -v1 + v3
    p3 = 2 * (v1 - v2) + v3 - v4
    p4 = -v1 + v2 - v3 + v4
    return v2 + d * (p2 + d * (p3 + d * p4))


def _pil_shear(x: Tensor, shear: float, axis: int) -> Tensor:
    """Pillow's bicubic affine ``(1, s, 0, 0, 1, 0)`` (axis 1, ShearX) or ``(1, 0, 0, s, 1, 0)``
    (axis 0, ShearY): source point ``(x + 0.5 + s (y + 0.5), y + 0.5)`` for ShearX; gray where it
    falls outside the image; else Pillow's 4x4 cubic (a = -1) over edge-clamped neighbours,
    clipped and truncated. The source row of a ShearX pixel is exactly its own (the vertical
    pass has weight 1 there), so only the horizontal pass is computed; ShearY is ShearX of the
    transposed image."""
    if axis == 0:
        return _pil_shear(x.transpose(-1, -2), shear, 1).transpose(-1, -2).contiguous()
    b, c, h, w = x.shape
    columns, dx, inside = _shear_sources(h, w, shear, x.device)
    values = x.to(torch.float64)
    taps = [values.gather(3, col.expand(b, c, h, w)) for col in columns]
    out = _cubic(*taps, dx).clamp_(0, 255).trunc_().to(torch.uint8)
    return torch.where(inside, out, torch.full((), _FILL, dtype=x.dtype, device=x.device))


@functools.lru_cache(maxsize=256)
def _shear_sources(h: int, w: int, shear: float, device: torch.device
                   ) -> tuple[tuple[Tensor, ...], Tensor, Tensor]:
    """The 4 clamped source columns, the cubic's offset and the inside mask of a ShearX."""
    f64 = torch.float64
    xo = torch.arange(w, device=device, dtype=f64)[None, :] + 0.5
    yo = torch.arange(h, device=device, dtype=f64)[:, None] + 0.5
    xin = xo + shear * yo  # Pillow's a0 * x + a1 * y + a2 with a0 = 1, a2 = 0 (exact no-ops)
    inside = (xin >= 0) & (xin < w)
    xin = xin - 0.5
    x0 = xin.floor()
    dx = xin - x0
    x0 = x0.long() - 1
    return tuple((x0 + k).clamp(0, w - 1) for k in range(4)), dx, inside


def _luma(x: Tensor) -> Tensor:
    """Pillow's RGB -> L: (19595 R + 38470 G + 7471 B + 0x8000) >> 16, as (B, 1, H, W) int32."""
    if x.shape[1] == 1:
        return x.to(torch.int32)
    r, g, b = x.to(torch.int32).unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)[:, None]


def _pil_blend(degenerate: Tensor, x: Tensor, factor: float) -> Tensor:
    """``Image.blend(degenerate, x, factor)``: ``in1 + alpha * (in2 - in1)`` in float32 (Pillow
    takes alpha as a C float), clipped to [0, 255] and truncated."""
    alpha = torch.tensor(factor, dtype=torch.float32, device=x.device)
    d = degenerate.to(torch.float32)
    out = d + alpha * (x.to(torch.float32) - d)
    return out.clamp_(0, 255).trunc_().to(torch.uint8)


def _pil_smooth(x: Tensor) -> Tensor:
    """``ImageFilter.SMOOTH`` (3x3 kernel 1 1 1 / 1 5 1 / 1 1 1, divisor 13, rounded); Pillow
    leaves the one-pixel border unfiltered. Exact integer arithmetic (Pillow's float sum never
    lies near a rounding boundary: 13 is odd)."""
    h, w = x.shape[-2:]
    xi = x.to(torch.int32)
    s = 4 * xi[..., 1:-1, 1:-1]
    for dy in range(3):
        for dx in range(3):
            s = s + xi[..., dy:h - 2 + dy, dx:w - 2 + dx]
    out = x.clone()
    out[..., 1:-1, 1:-1] = torch.div(2 * s + 13, 26, rounding_mode="floor").to(torch.uint8)
    return out


def _pil_autocontrast(x: Tensor) -> Tensor:
    """``ImageOps.autocontrast`` per channel: lut(i) = int(i * 255 / (hi - lo) - lo * scale)
    (float64, truncated, clipped); a flat channel is left as it is."""
    lo = x.amin(dim=(-2, -1), keepdim=True).to(torch.float64)
    hi = x.amax(dim=(-2, -1), keepdim=True).to(torch.float64)
    flat = hi <= lo
    # a true division: ``255.0 / tensor`` would be computed as 255 * reciprocal (not Python's)
    scale = torch.full_like(lo, 255.0) / torch.where(flat, 1.0, hi - lo)
    offset = -lo * scale
    out = (x.to(torch.float64) * scale + offset).trunc_().clamp_(0, 255).to(torch.uint8)
    return torch.where(flat, x, out)


def _pil_equalize(x: Tensor) -> Tensor:
    """``ImageOps.equalize`` per channel: step = (pixels - count of the top level) // 255,
    lut(i) = (step // 2 + pixels below i) // step, clipped to 255 (Pillow's point() clips);
    identity when step is 0 (also a flat channel)."""
    b, c, h, w = x.shape
    flat = x.reshape(b * c, h * w).long()
    hist = torch.zeros(b * c, 256, dtype=torch.int64, device=x.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    top = hist.gather(1, flat.amax(dim=1, keepdim=True))
    step = torch.div(h * w - top, 255, rounding_mode="floor")
    below = hist.cumsum(1) - hist
    lut = torch.div(torch.div(step, 2, rounding_mode="floor") + below, step.clamp(min=1),
                    rounding_mode="floor").clamp_(max=255)
    lut = torch.where(step > 0, lut, torch.arange(256, device=x.device))
    return lut.gather(1, flat).to(torch.uint8).view(b, c, h, w)


def _authors_op(x: Tensor, op: str, magnitude: float) -> Tensor:
    """One op of the authors' ``SubPolicy`` with a fixed (signed) magnitude, on a uint8 batch."""
    if op in ("ShearX", "ShearY"):
        return _pil_shear(x, magnitude, axis=1 if op == "ShearX" else 0)
    if op in ("TranslateX", "TranslateY"):
        return _pil_translate(x, magnitude, axis=1 if op == "TranslateX" else 0)
    if op == "Rotate":
        return _pil_rotate(x, magnitude)
    if op == "Color":
        return _pil_blend(_luma(x), x, 1.0 + magnitude)
    if op == "Contrast":
        luma = _luma(x)
        n = luma.shape[-1] * luma.shape[-2]
        total = luma.sum(dim=(1, 2, 3), keepdim=True, dtype=torch.int64)
        mean = torch.div(2 * total + n, 2 * n, rounding_mode="floor")  # int(mean + 0.5)
        return _pil_blend(mean, x, 1.0 + magnitude)
    if op == "Brightness":
        return _pil_blend(torch.zeros((), dtype=torch.uint8, device=x.device), x, 1.0 + magnitude)
    if op == "Sharpness":
        return _pil_blend(_pil_smooth(x), x, 1.0 + magnitude)
    if op == "Posterize":
        return x & (~(2 ** (8 - int(magnitude)) - 1) & 0xFF)
    if op == "Solarize":
        return torch.where(x >= magnitude, 255 - x, x)
    if op == "AutoContrast":
        return _pil_autocontrast(x)
    if op == "Equalize":
        return _pil_equalize(x)
    if op == "Invert":
        return 255 - x
    raise ValueError(f"unknown AutoAugment op {op!r}")


def _apply_op(x: Tensor, op: str, magnitude: float, impl: str) -> Tensor:
    """Apply one AutoAugment op of ``impl`` with a fixed (signed) magnitude to a uint8 batch."""
    _check_impl(impl)
    return (_torchvision_op if impl == "torchvision" else _authors_op)(x, op, magnitude)


def _policy_table(policy: str, impl: str) -> tuple[SubPolicy, ...]:
    _check_impl(impl)
    try:
        return _POLICIES[impl][policy]
    except KeyError:
        raise ValueError(
            f"unknown AutoAugment policy {policy!r}; valid policies: {sorted(_POLICIES[impl])}"
        ) from None


@functools.lru_cache(maxsize=32)
def _policy_probs(policy: str, impl: str, device: torch.device | None) -> Tensor:
    """(25, 2) application probabilities of the sub-policies' ops, cached per device."""
    return torch.tensor([[p for _, p, _ in sp] for sp in _policy_table(policy, impl)],
                        device=device)


@functools.lru_cache(maxsize=32)
def _policy_actions(policy: str, impl: str, height: int, width: int, device: torch.device
                    ) -> tuple[tuple[tuple[str, float], ...], Tensor]:
    """Distinct actions ``(op, signed magnitude)`` of a policy for HxW images, and a lookup
    ``(sub-policy, slot, negated) -> action id`` (on ``device``), cached per policy/size/device."""
    table = _policy_table(policy, impl)
    signed = _SIGNED_OPS[impl]
    actions: list[tuple[str, float]] = []
    lut = torch.empty(len(table), 2, 2, dtype=torch.long)
    for s, sub_policy in enumerate(table):
        for k, (op, _, bin_) in enumerate(sub_policy):
            mag = _magnitude(impl, op, bin_, height, width)
            for neg in (0, 1):
                action = (op, -mag if neg and op in signed else mag)  # -0.0 == 0.0: merged
                if action not in actions:
                    actions.append(action)
                lut[s, k, neg] = actions.index(action)
    return tuple(actions), lut.to(device)


def _sample_autoaugment_params(
    batch: int, policy: str, impl: str, *, generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample AutoAugment decisions: ``(sub_policy (B,), applied (B, 2), negated (B, 2))``.

    Same distribution as the implementation's own: a uniform sub-policy; op ``k`` applied iff
    ``U < p_k`` (the authors' ``random.random() < p``) or ``U <= p_k`` (torchvision); a signed
    op's magnitude negated iff ``U <= 0.5``. ``negated`` is drawn for every slot (it is ignored
    for unsigned or unapplied ops). Draws, in order: sub-policy, apply, sign.
    """
    table = _policy_table(policy, impl)
    sub = torch.randint(0, len(table), (batch,), generator=generator, device=device)
    probs = _policy_probs(policy, impl, torch.device(device) if device is not None else None)
    u = torch.rand(batch, 2, generator=generator, device=device)
    applied = u < probs[sub] if impl == "authors" else u <= probs[sub]
    negated = torch.rand(batch, 2, generator=generator, device=device) <= 0.5
    return sub, applied, negated


def autoaugment(x: Tensor, *, policy: str, impl: str,
                generator: torch.Generator | None = None) -> Tensor:
    """AutoAugment (Cubuk et al., 2019), ``policy`` "cifar10" or "imagenet", per sample, batched.

    ``impl`` "authors": the authors' code's PIL sub-policies and tables (gray fill 128, bicubic
    shear, positive rotation, enhancement factor 1 +/- m), reproduced on tensors; "torchvision":
    torchvision v2 ``AutoAugment`` (nearest interpolation, fill 0, signed rotation).
    Each image draws its own sub-policy; each of the sub-policy's two ops is applied with its
    probability, signed magnitudes with a random sign. x: uint8 (B, C, H, W).

    Batching: samples are grouped by (op slot, op, signed magnitude) -- a merge of the
    (sub-policy, slot, sign) groups that share an op and magnitude -- and each group is transformed
    at once; slot 0 groups run before slot 1 groups. The grouping is a device sort plus one small
    device-to-host copy of the group sizes (one sync per call).
    """
    _check_batch(x)
    _policy_table(policy, impl)  # validate the names first
    if x.dtype != torch.uint8:
        raise TypeError(f"autoaugment expects a uint8 batch, got {x.dtype}")
    b, _, h, w = x.shape
    dev = x.device
    sub, applied, negated = _sample_autoaugment_params(b, policy, impl, generator=generator,
                                                       device=dev)

    actions, lut = _policy_actions(policy, impl, h, w, dev)
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
            out.index_copy_(0, idx, _apply_op(out.index_select(0, idx), op, mag, impl))
        start += count
    return out
