"""Batched on-device augmentations: shapes/dtypes, per-sample randomness, reproducibility, and
agreement with their references: torchvision (RandomCrop+flip, RandomResizedCrop, v2
AutoAugment) and, for the authors' AutoAugment, PIL driven as the authors' code drives it (the
reference is written here, op by op, from their code's semantics)."""

import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageEnhance, ImageOps

from robustarch.data.augment import (
    _POLICIES,
    _SIGNED_OPS,
    IMPLEMENTATIONS,
    _apply_op,
    _crop_boxes,
    _magnitude,
    _sample_autoaugment_params,
    _sample_resized_crop_boxes,
    autoaugment,
    random_crop_flip,
    random_resized_crop_flip,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
POLICY_NAMES = ["cifar10", "imagenet"]


def gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def images(b: int, c: int = 3, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (b, c, h, w), dtype=torch.uint8, generator=gen(seed))


def natural_images(b: int, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth, varied-contrast uint8 images (a blurred upsampled noise field), so histogram and
    contrast ops do something non-trivial, unlike on uniform noise."""
    g = gen(seed)
    low = torch.rand(b, 3, 4, 4, generator=g) * torch.rand(b, 1, 1, 1, generator=g)
    img = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False) * 255
    return img.round().clamp(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------- random_crop_flip


def coordinate_images(b: int, h: int = 32, w: int = 32) -> torch.Tensor:
    """Channel 0 holds row+1, channel 1 holds column+1 (0 only in the zero padding)."""
    rows = torch.arange(1, h + 1, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(1, w + 1, dtype=torch.float32)[None, :].expand(h, w)
    return torch.stack([rows, cols]).expand(b, 2, h, w).contiguous()


def decode_crop(out: torch.Tensor, padding: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Recover (row offset, column offset, flipped) per sample from a cropped coordinate image."""
    h, w = out.shape[-2:]
    r, c = h // 2, w // 2  # rows/columns r, c, c+1 come from inside the image if padding <= H/2-2
    oy = out[:, 0, r, c].long() - 1 - r + padding
    flipped = out[:, 1, r, c + 1] < out[:, 1, r, c]
    src_col = out[:, 1, r, c].long() - 1
    ox = torch.where(flipped, src_col - (w - 1 - c), src_col - c) + padding
    return oy, ox, flipped


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_crop_flip_preserves_shape_dtype_device_and_values(device, dtype):
    x = images(16).to(device=device, dtype=dtype)
    before = x.clone()
    out = random_crop_flip(x, generator=gen(0, device))
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert torch.equal(x, before)  # input untouched
    allowed = set(x.unique().tolist()) | {0}
    assert set(out.unique().tolist()) <= allowed


def test_crop_flip_equals_padded_shift_brute_force():
    """Every output is one of the 81 x 2 torchvision pad(4)+crop(+hflip) candidates of its input."""
    x = images(8)
    out = random_crop_flip(x, padding=4, generator=gen(1))
    padded = TF.pad(x, [4])
    for b in range(len(x)):
        matches = []
        for oy in range(9):
            for ox in range(9):
                crop = TF.crop(padded[b], oy, ox, 32, 32)
                for flip in (False, True):
                    cand = TF.horizontal_flip(crop) if flip else crop
                    if torch.equal(cand, out[b]):
                        matches.append((oy, ox, flip))
        assert len(matches) == 1, (b, matches)


@settings(max_examples=25, deadline=None)
@given(
    padding=st.integers(0, 4),
    h=st.integers(12, 20),
    w=st.integers(12, 20),
    seed=st.integers(0, 2**31),
)
def test_crop_flip_decoded_offsets_reconstruct_output(padding, h, w, seed):
    x = coordinate_images(6, h, w)
    out = random_crop_flip(x, padding=padding, generator=gen(seed))
    oy, ox, flipped = decode_crop(out, padding)
    assert ((oy >= 0) & (oy <= 2 * padding) & (ox >= 0) & (ox <= 2 * padding)).all()
    padded = F.pad(x, (padding,) * 4)
    for b in range(len(x)):
        ref = padded[b, :, oy[b]:oy[b] + h, ox[b]:ox[b] + w]
        ref = ref.flip(-1) if flipped[b] else ref
        assert torch.equal(out[b], ref)


def test_crop_flip_is_per_sample_and_uniform():
    out = random_crop_flip(coordinate_images(256), padding=4, generator=gen(2))
    oy, ox, flipped = decode_crop(out, 4)
    assert len(set(zip(oy.tolist(), ox.tolist(), flipped.tolist(), strict=True))) > 90
    assert set(oy.tolist()) == set(range(9)) and set(ox.tolist()) == set(range(9))
    assert 0.35 < flipped.float().mean().item() < 0.65


def test_crop_flip_reproducible_with_seed():
    x = images(64)
    a = random_crop_flip(x, generator=gen(3))
    assert torch.equal(a, random_crop_flip(x, generator=gen(3)))
    assert not torch.equal(a, random_crop_flip(x, generator=gen(4)))


# --------------------------------------------------------------------------- resized crop + flip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_resized_crop_shape_dtype_device_range(device, dtype):
    x = images(8).to(device=device, dtype=dtype)
    out = random_resized_crop_flip(x, size=40, generator=gen(0, device))
    assert out.shape == (8, 3, 40, 40) and out.dtype == dtype and out.device == x.device
    assert out.min() >= 0 and out.max() <= 255


def test_full_box_is_plain_resize_up_to_flip_and_flips_half_the_time():
    x = images(512, h=16, w=16)
    out = random_resized_crop_flip(x, size=48, scale=(1, 1), ratio=(1, 1), generator=gen(5))
    plain = TF.resize(x, [48, 48], interpolation=T.InterpolationMode.BILINEAR, antialias=True)
    err = (out.int() - plain.int()).abs().amax(dim=(1, 2, 3))
    err_flip = (out.int() - plain.flip(-1).int()).abs().amax(dim=(1, 2, 3))
    assert (torch.minimum(err, err_flip) <= 1).all()
    flipped = err_flip < err
    assert 0.4 < flipped.float().mean().item() < 0.6


def test_boxes_respect_scale_ratio_and_bounds():
    n, h, w = 4000, 224, 224
    scale, ratio = (0.08, 1.0), (3 / 4, 4 / 3)
    top, left, bh, bw = _sample_resized_crop_boxes(n, h, w, scale, ratio, generator=gen(6)).T
    assert ((top >= 0) & (left >= 0) & (top + bh <= h) & (left + bw <= w)).all()
    area = (bh * bw).double() / (h * w)
    # rounding w and h to integers moves the area by at most ~(bw + bh + 1) pixels
    slack = (bh + bw + 1).double() / (h * w)
    assert (area >= scale[0] - slack).all() and (area <= scale[1] + slack).all()
    aspect = bw.double() / bh.double()
    tol_r = 1.0 / bh.double() + 1.0 / bw.double()
    assert (aspect >= ratio[0] * (1 - tol_r)).all() and (aspect <= ratio[1] * (1 + tol_r)).all()
    # the area fraction spreads over the whole range (not, e.g., stuck at the fallback)
    assert area.min() < 0.1 and area.max() > 0.95
    # same distribution as torchvision's RandomResizedCrop.make_params (statistically)
    torch.manual_seed(0)
    rrc = T.RandomResizedCrop(224, scale=scale, ratio=ratio)
    img = torch.zeros(3, h, w, dtype=torch.uint8)
    ref = [rrc.make_params([img]) for _ in range(2000)]
    ref_area = torch.tensor([p["height"] * p["width"] / (h * w) for p in ref])
    ref_top = torch.tensor([p["top"] / h for p in ref], dtype=torch.float64)
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(area.quantile(q).item() - ref_area.double().quantile(q).item()) < 0.04, q
    assert abs((top.double() / h).mean().item() - ref_top.mean().item()) < 0.03


def test_box_area_uniform_within_narrow_scale():
    n, h, w = 2000, 200, 200
    top, left, bh, bw = _sample_resized_crop_boxes(n, h, w, (0.25, 0.5), (1, 1),
                                                   generator=gen(7)).T
    area = (bh * bw).double() / (h * w)
    assert (area > 0.25 - 0.011).all() and (area < 0.5 + 0.011).all()
    assert abs(area.mean().item() - 0.375) < 0.01
    assert (bh == bw).all()


@pytest.mark.parametrize(("hw", "ratio"), [((50, 50), (2.0, 3.0)), ((30, 90), (0.5, 1.0)),
                                           ((60, 40), (0.75, 1.0))])
def test_box_fallback_matches_torchvision(hw, ratio):
    """When no try fits, the center-crop fallback equals torchvision's."""
    h, w = hw
    scale = (0.99, 1.0) if ratio != (0.75, 1.0) else (1.0, 1.0)
    boxes = _sample_resized_crop_boxes(64, h, w, scale, ratio, generator=gen(8))
    rrc = T.RandomResizedCrop(8, scale=scale, ratio=ratio)
    torch.manual_seed(0)
    p = rrc.make_params([torch.zeros(3, h, w)])
    expected = torch.tensor([p["top"], p["left"], p["height"], p["width"]])
    fallback_rows = (boxes == expected).all(dim=1)
    if ratio == (0.75, 1.0):  # the whole 60x40 image has ratio 2/3 < 0.75: always fallback
        assert fallback_rows.all()
    else:
        assert fallback_rows.all(), boxes[~fallback_rows][:4]


def test_resized_crop_content_matches_torchvision_resized_crop():
    """Each output is torchvision's resized_crop of its sampled box (bilinear, no antialias, so
    upscaling), possibly flipped; the outer ring within half an input pixel of the crop edge is
    excluded (we clamp at the image border, torchvision at the crop border)."""
    x = natural_images(32, 32, 32, seed=9)
    size = 64
    scale, ratio = (0.3, 1.0), (3 / 4, 4 / 3)
    boxes = _sample_resized_crop_boxes(32, 32, 32, scale, ratio, generator=gen(10))
    out = random_resized_crop_flip(x, size=size, scale=scale, ratio=ratio, generator=gen(10))
    for b, (top, left, bh, bw) in enumerate(boxes.tolist()):
        ref = TF.resized_crop(x[b], top, left, bh, bw, [size, size],
                              interpolation=T.InterpolationMode.BILINEAR, antialias=False)
        my, mx = math.ceil(size / bh / 2) + 1, math.ceil(size / bw / 2) + 1
        inner = (slice(None), slice(my, size - my))
        d = (out[b].int() - ref.int())[inner][..., mx:size - mx].abs().max()
        d_flip = (out[b].int() - ref.flip(-1).int())[inner][..., mx:size - mx].abs().max()
        assert min(d, d_flip) <= 1, (b, d, d_flip)


def test_resized_crop_reproducible_with_seed():
    x = images(32)
    a = random_resized_crop_flip(x, size=32, generator=gen(11))
    assert torch.equal(a, random_resized_crop_flip(x, size=32, generator=gen(11)))
    assert not torch.equal(a, random_resized_crop_flip(x, size=32, generator=gen(12)))


def test_resized_crop_without_flip_never_flips():
    """``flip=False`` (the authors' ImageNette crop): the crop of the box, never mirrored."""
    x = natural_images(16, 32, 32, seed=21)
    boxes = _sample_resized_crop_boxes(16, 32, 32, (0.3, 1.0), (3 / 4, 4 / 3), generator=gen(22))
    out = random_resized_crop_flip(x, size=48, scale=(0.3, 1.0), flip=False, generator=gen(22))
    flipped = random_resized_crop_flip(x, size=48, scale=(0.3, 1.0), generator=gen(22))
    assert not torch.equal(out, flipped)  # the flip run mirrors about half of them
    for b, (top, left, bh, bw) in enumerate(boxes.tolist()):
        ref = TF.resized_crop(x[b], top, left, bh, bw, [48, 48],
                              interpolation=T.InterpolationMode.BILINEAR, antialias=False)
        my, mx = math.ceil(48 / bh / 2) + 1, math.ceil(48 / bw / 2) + 1
        d = (out[b].int() - ref.int())[:, my:48 - my, mx:48 - mx].abs().max()
        assert d <= 1, (b, d)


# ------------------------------------------------ resized crop of full frames (ImageNette)

# Frames (true height, width) on one 24 x 40 canvas, the layout of robustarch.data.splits: top
# left, a portrait frame (height > width) stored transposed.
CANVAS = (24, 40)
FRAMES = [(20, 36), (36, 20), (24, 24), (9, 40)]
PAD = 255


def canvas_of(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, 24, 40) canvas (padding PAD) of (C, h, w) frames, and their (B, 2) sizes."""
    x = torch.full((len(frames), frames[0].shape[0], *CANVAS), PAD, dtype=frames[0].dtype)
    for i, f in enumerate(frames):
        stored = f.transpose(1, 2) if f.shape[1] > f.shape[2] else f
        x[i, :, :stored.shape[1], :stored.shape[2]] = stored
    return x, torch.tensor([f.shape[1:] for f in frames], dtype=torch.int64)


def coordinate_frame(h: int, w: int) -> torch.Tensor:
    """Float frame: channel 0 its row, channel 1 its column, channel 2 a constant 100."""
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    return torch.stack([rows, cols, torch.full((h, w), 100.0)])


@pytest.mark.parametrize(("hw", "scale", "ratio"), [((24, 40), (0.08, 1.0), (3 / 4, 4 / 3)),
                                                   ((50, 50), (0.99, 1.0), (2.0, 3.0)),
                                                   ((30, 90), (0.99, 1.0), (0.5, 1.0))])
def test_per_image_boxes_equal_the_fixed_size_boxes(hw, scale, ratio):
    """Sizes given per image draw the same numbers and give the same boxes (fallback too)."""
    h, w = hw
    fixed = _sample_resized_crop_boxes(500, h, w, scale, ratio, generator=gen(30))
    heights, widths = torch.full((500,), h), torch.full((500,), w)
    per_image = _sample_resized_crop_boxes(500, heights, widths, scale, ratio, generator=gen(30))
    assert torch.equal(fixed, per_image)


def test_per_image_fallback_matches_torchvision_for_each_size():
    sizes = [(60, 40), (30, 90), (50, 50), (90, 30)]
    heights, widths = (torch.tensor(v) for v in zip(*sizes, strict=True))
    boxes = _sample_resized_crop_boxes(4, heights, widths, (1.0, 1.0), (0.8, 1.2),
                                       generator=gen(31))
    for (h, w), box in zip(sizes, boxes.tolist(), strict=True):
        if h == w:  # a square frame fits at ratio 1 (a fitting try, not the fallback)
            assert box == [0, 0, h, w]
            continue
        p = T.RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(0.8, 1.2)).make_params(
            [torch.zeros(3, h, w)])
        assert box == [p["top"], p["left"], p["height"], p["width"]], (h, w)


def test_full_frame_crops_reach_every_edge_of_the_true_frame_and_never_the_padding():
    """Many crops of each frame: their boxes cover the frame edge to edge and stay inside it;
    the crops' pixels come from the frame (rows 0..h-1, columns 0..w-1, in the frame's own
    orientation even when it is stored transposed) and never from the padding."""
    n = 600
    frames = [coordinate_frame(h, w) for h, w in FRAMES]
    x, sizes = canvas_of(frames)
    x, sizes = x.repeat_interleave(n, 0), sizes.repeat_interleave(n, 0)
    boxes = _sample_resized_crop_boxes(len(x), sizes[:, 0], sizes[:, 1], (0.08, 1.0),
                                       (3 / 4, 4 / 3), generator=gen(32))
    top, left, bh, bw = boxes.T
    assert ((top >= 0) & (left >= 0) & (top + bh <= sizes[:, 0])
            & (left + bw <= sizes[:, 1])).all()
    out = random_resized_crop_flip(x, size=48, sizes=sizes, generator=gen(33))
    assert out.shape == (len(x), 3, 48, 48)
    for i, (h, w) in enumerate(FRAMES):
        rows = slice(i * n, (i + 1) * n)
        assert top[rows].min() == 0 and (top + bh)[rows].max() == h, (h, w)
        assert left[rows].min() == 0 and (left + bw)[rows].max() == w, (h, w)
        crops = out[rows]
        # Upscaled crops sample their edge pixels at the clamped border: the edge values (up to
        # float rounding of the sampling grid).
        for channel, last in ((0, h - 1), (1, w - 1)):
            low, high = crops[:, channel].amin().item(), crops[:, channel].amax().item()
            assert low == pytest.approx(0, abs=1e-4) and high == pytest.approx(last, abs=1e-4)
        assert (crops[:, 2] - 100).abs().max() < 1e-4  # no padding (255) blended in


@pytest.mark.parametrize("flip", [False, True])
def test_full_frame_crop_equals_torchvision_resized_crop_of_the_true_frame(flip):
    """For fixed boxes, each crop is torchvision's resized_crop of the true frame (bilinear, no
    antialias), whether the frame is stored as is or transposed; the ring within half an input
    pixel of the crop edge is excluded (we clamp at the frame border, torchvision at the crop's)."""
    frames = [natural_images(1, h, w, seed=40 + i)[0] for i, (h, w) in enumerate(FRAMES)]
    x, sizes = canvas_of(frames)
    boxes = torch.tensor([[3, 5, 15, 20], [10, 2, 20, 15], [0, 0, 24, 24], [1, 20, 8, 20]])
    flipped = torch.full((len(frames),), flip)
    size = 40
    out = _crop_boxes(x, boxes, size, flipped, sizes)
    for b, (top, left, bh, bw) in enumerate(boxes.tolist()):
        ref = TF.resized_crop(frames[b], top, left, bh, bw, [size, size],
                              interpolation=T.InterpolationMode.BILINEAR, antialias=False)
        ref = ref.flip(-1) if flip else ref
        my, mx = math.ceil(size / bh / 2) + 1, math.ceil(size / bw / 2) + 1
        d = (out[b].int() - ref.int())[:, my:size - my, mx:size - mx].abs().max()
        assert d <= 1, (b, d)


def test_full_frames_filling_the_canvas_crop_like_whole_images():
    """Frames of the canvas' own (landscape) size: the same draws and, up to float rounding of
    the two grid computations, the same crops as without sizes."""
    x = natural_images(64, 24, 40, seed=50)
    sizes = torch.tensor([[24, 40]] * 64)
    plain = random_resized_crop_flip(x, size=32, generator=gen(51))
    framed = random_resized_crop_flip(x, size=32, sizes=sizes, generator=gen(51))
    assert (plain.int() - framed.int()).abs().max() <= 1


# ---------------------------------------------------------------- AutoAugment: torchvision


def tv_autoaugment(policy: str) -> T.AutoAugment:
    return T.AutoAugment(T.AutoAugmentPolicy(policy))


def tv_apply(aa: T.AutoAugment, img: torch.Tensor, op: str, mag: float) -> torch.Tensor:
    """torchvision v2 AutoAugment's own op dispatch, on a single image."""
    return aa._apply_image_or_video_transform(img, op, mag, interpolation=aa.interpolation,
                                              fill=aa._fill)


def tv_magnitude(aa: T.AutoAugment, op: str, bin_: int | None, h: int, w: int) -> float:
    mags_fn, _ = aa._AUGMENTATION_SPACE[op]
    mags = mags_fn(10, h, w)
    if mags is None or bin_ is None:
        return 0.0
    return float(mags[bin_])  # for Solarize a fraction of the dtype's max, scaled in tv_apply


TV = "torchvision"


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_policy_tables_and_magnitudes_match_torchvision(policy):
    aa = tv_autoaugment(policy)
    assert [tuple(sp) for sp in aa._policies] == [tuple(sp) for sp in _POLICIES[TV][policy]]
    assert len(_POLICIES[TV][policy]) == 25
    for sp in _POLICIES[TV][policy]:
        for op, _, bin_ in sp:
            tv_mag = tv_magnitude(aa, op, bin_, 32, 40)
            expected = 255.0 * tv_mag if op == "Solarize" else tv_mag  # uint8 threshold
            assert _magnitude(TV, op, bin_, 32, 40) == expected, op
            assert (op in _SIGNED_OPS[TV]) == aa._AUGMENTATION_SPACE[op][1], op


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_each_batched_op_equals_torchvision_per_image(policy):
    """Every (op, signed magnitude) of the policy, applied to a batch, equals torchvision v2
    AutoAugment's op applied image by image."""
    aa = tv_autoaugment(policy)
    x = torch.cat([natural_images(5, 24, 28, seed=13), images(1, h=24, w=28)])
    seen = set()
    for sp in _POLICIES[TV][policy]:
        for op, _, bin_ in sp:
            mag, tv_mag = _magnitude(TV, op, bin_, 24, 28), tv_magnitude(aa, op, bin_, 24, 28)
            for sign in ((1, -1) if op in _SIGNED_OPS[TV] else (1,)):
                m = sign * mag
                if (op, m) in seen:
                    continue
                seen.add((op, m))
                out = _apply_op(x, op, m, TV)
                ref = torch.stack([tv_apply(aa, img, op, sign * tv_mag) for img in x])
                assert out.dtype == torch.uint8
                assert torch.equal(out, ref), (op, m)
                if op not in ("Color",) or m != 0.0:
                    assert not torch.equal(out, x), (op, m)  # the op does something
    assert len(seen) > 20


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_autoaugment_equals_torchvision_replay_of_its_decisions(policy):
    """End to end: re-draw the per-sample decisions from the same seed and replay them image by
    image with torchvision's own policy table, magnitudes and ops; the batch must match exactly."""
    h, w = 32, 40
    x = natural_images(96, h, w, seed=14)
    out = autoaugment(x, policy=policy, impl=TV, generator=gen(15))
    sub, applied, negated = _sample_autoaugment_params(96, policy, TV, generator=gen(15))
    aa = tv_autoaugment(policy)
    n_applied = 0
    for b in range(len(x)):
        img = x[b]
        for k, (op, _, bin_) in enumerate(aa._policies[sub[b]]):
            if applied[b, k]:
                n_applied += 1
                mag = tv_magnitude(aa, op, bin_, h, w)
                if aa._AUGMENTATION_SPACE[op][1] and negated[b, k]:
                    mag = -mag
                img = tv_apply(aa, img, op, mag)
        assert torch.equal(out[b], img), (b, aa._policies[sub[b]], applied[b], negated[b])
    assert n_applied > 60


# ---------------------------------------------------------------- AutoAugment: authors'

# The authors' tables (DIG-Beihang/RobustART, cifar10/code/aug/autoaugment.py), transcribed in
# their own layout: SubPolicy(p1, op1, magnitude_idx1, p2, op2, magnitude_idx2).
AUTHORS_CIFAR10 = """
0.1 invert 7 0.2 contrast 6 | 0.7 rotate 2 0.3 translateX 9 | 0.8 sharpness 1 0.9 sharpness 3
0.5 shearY 8 0.7 translateY 9 | 0.5 autocontrast 8 0.9 equalize 2 | 0.2 shearY 7 0.3 posterize 7
0.4 color 3 0.6 brightness 7 | 0.3 sharpness 9 0.7 brightness 9 | 0.6 equalize 5 0.5 equalize 1
0.6 contrast 7 0.6 sharpness 5 | 0.7 color 7 0.5 translateX 8 | 0.3 equalize 7 0.4 autocontrast 8
0.4 translateY 3 0.2 sharpness 6 | 0.9 brightness 6 0.2 color 8 | 0.5 solarize 2 0.0 invert 3
0.2 equalize 0 0.6 autocontrast 0 | 0.2 equalize 8 0.8 equalize 4 | 0.9 color 9 0.6 equalize 6
0.8 autocontrast 4 0.2 solarize 8 | 0.1 brightness 3 0.7 color 0 | 0.4 solarize 5 0.9 autocontrast 3
0.9 translateY 9 0.7 translateY 9 | 0.9 autocontrast 2 0.8 solarize 3 | 0.8 equalize 8 0.1 invert 3
0.7 translateY 9 0.9 autocontrast 1
"""
AUTHORS_IMAGENET = """
0.4 posterize 8 0.6 rotate 9 | 0.6 solarize 5 0.6 autocontrast 5 | 0.8 equalize 8 0.6 equalize 3
0.6 posterize 7 0.6 posterize 6 | 0.4 equalize 7 0.2 solarize 4 | 0.4 equalize 4 0.8 rotate 8
0.6 solarize 3 0.6 equalize 7 | 0.8 posterize 5 1.0 equalize 2 | 0.2 rotate 3 0.6 solarize 8
0.6 equalize 8 0.4 posterize 6 | 0.8 rotate 8 0.4 color 0 | 0.4 rotate 9 0.6 equalize 2
0.0 equalize 7 0.8 equalize 8 | 0.6 invert 4 1.0 equalize 8 | 0.6 color 4 1.0 contrast 8
0.8 rotate 8 1.0 color 2 | 0.8 color 8 0.8 solarize 7 | 0.4 sharpness 7 0.6 invert 8
0.6 shearX 5 1.0 equalize 9 | 0.4 color 0 0.6 equalize 3 | 0.4 equalize 7 0.2 solarize 4
0.6 solarize 5 0.6 autocontrast 5 | 0.6 invert 4 1.0 equalize 8 | 0.6 color 4 1.0 contrast 8
0.8 equalize 8 0.6 equalize 3
"""
THEIR_NAMES = {"shearX": "ShearX", "shearY": "ShearY", "translateX": "TranslateX",
               "translateY": "TranslateY", "rotate": "Rotate", "color": "Color",
               "posterize": "Posterize", "solarize": "Solarize", "contrast": "Contrast",
               "sharpness": "Sharpness", "brightness": "Brightness",
               "autocontrast": "AutoContrast", "equalize": "Equalize", "invert": "Invert"}
AUTHORS = "authors"
AUTHORS_SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Color", "Contrast",
                  "Sharpness", "Brightness"}  # random.choice([-1, 1]); rotate has no sign


def their_table(text: str) -> list[tuple]:
    rows = []
    for entry in " | ".join(text.strip().splitlines()).split(" | "):
        p1, op1, m1, p2, op2, m2 = entry.split()
        rows.append(((THEIR_NAMES[op1], float(p1), int(m1)),
                     (THEIR_NAMES[op2], float(p2), int(m2))))
    return rows


def their_magnitude(op: str, bin_: int) -> float:
    """SubPolicy's ``ranges[op][bin]`` (translation still a fraction of the image side)."""
    ranges = {"ShearX": np.linspace(0, 0.3, 10), "ShearY": np.linspace(0, 0.3, 10),
              "TranslateX": np.linspace(0, 150 / 331, 10),
              "TranslateY": np.linspace(0, 150 / 331, 10), "Rotate": np.linspace(0, 30, 10),
              "Color": np.linspace(0.0, 0.9, 10), "Contrast": np.linspace(0.0, 0.9, 10),
              "Sharpness": np.linspace(0.0, 0.9, 10), "Brightness": np.linspace(0.0, 0.9, 10),
              "Posterize": np.round(np.linspace(8, 4, 10), 0).astype(int),
              "Solarize": np.linspace(256, 0, 10)}
    return float(ranges[op][bin_]) if op in ranges else 0.0


GRAY = (128, 128, 128)


def pil_reference(img: Image.Image, op: str, magnitude: float, sign: int) -> Image.Image:
    """One op as the authors' SubPolicy applies it to a PIL RGB image, written from their code's
    semantics: ``magnitude`` is ``ranges[op][bin]``, ``sign`` what random.choice([-1, 1]) drew."""
    m = magnitude * sign
    affine = {"ShearX": (1, m, 0, 0, 1, 0), "ShearY": (1, 0, 0, m, 1, 0),
              "TranslateX": (1, 0, m * img.size[0], 0, 1, 0),
              "TranslateY": (1, 0, 0, 0, 1, m * img.size[1])}
    if op in ("ShearX", "ShearY"):
        return img.transform(img.size, Image.AFFINE, affine[op], Image.BICUBIC, fillcolor=GRAY)
    if op in ("TranslateX", "TranslateY"):
        return img.transform(img.size, Image.AFFINE, affine[op], fillcolor=GRAY)
    if op == "Rotate":  # rotate RGBA (nearest), then gray where the rotation left alpha 0
        rotated = img.convert("RGBA").rotate(magnitude)
        gray = Image.new("RGBA", rotated.size, (128, 128, 128, 128))
        return Image.composite(rotated, gray, rotated).convert(img.mode)
    enhancers = {"Color": ImageEnhance.Color, "Contrast": ImageEnhance.Contrast,
                 "Sharpness": ImageEnhance.Sharpness, "Brightness": ImageEnhance.Brightness}
    if op in enhancers:
        return enhancers[op](img).enhance(1 + m)
    if op == "Posterize":
        return ImageOps.posterize(img, int(magnitude))
    if op == "Solarize":
        return ImageOps.solarize(img, magnitude)
    return {"AutoContrast": ImageOps.autocontrast, "Equalize": ImageOps.equalize,
            "Invert": ImageOps.invert}[op](img)


def to_pil(img: torch.Tensor) -> Image.Image:
    return Image.fromarray(img.permute(1, 2, 0).cpu().numpy())


def from_pil(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)


def test_authors_tables_equal_theirs():
    for policy, text in (("cifar10", AUTHORS_CIFAR10), ("imagenet", AUTHORS_IMAGENET)):
        theirs = their_table(text)
        assert len(theirs) == 25  # both: 25 (the ImageNet docstring says 24)
        assert [tuple(sp) for sp in _POLICIES[AUTHORS][policy]] == theirs, policy
    # The only difference from torchvision's tables, besides the bins they keep for ops
    # without a magnitude: CIFAR-10 sub-policy 17's second equalize (0.8 vs 0.6).
    for policy in POLICY_NAMES:
        differ = [i for i, (a, t) in enumerate(zip(_POLICIES[AUTHORS][policy],
                                                   _POLICIES[TV][policy], strict=True))
                  if [(op, p) for op, p, _ in a] != [(op, p) for op, p, _ in t]]
        assert differ == ([16] if policy == "cifar10" else []), policy
    assert _SIGNED_OPS[AUTHORS] == AUTHORS_SIGNED


@pytest.mark.parametrize("op", sorted(THEIR_NAMES.values()))
def test_authors_magnitudes_equal_their_ranges(op):
    h, w = 24, 40
    for bin_ in range(10):
        expected = their_magnitude(op, bin_)
        if op in ("TranslateX", "TranslateY"):
            expected *= w if op == "TranslateX" else h  # they scale by img.size[0] / [1]
        assert _magnitude(AUTHORS, op, bin_, h, w) == expected, (op, bin_)
    assert _magnitude(AUTHORS, "Posterize", 0, h, w) == 8
    assert _magnitude(AUTHORS, "Posterize", 9, h, w) == 4
    assert _magnitude(AUTHORS, "Solarize", 0, h, w) == 256
    assert _magnitude(AUTHORS, "Rotate", 9, h, w) == 30


@functools.cache
def _pil_test_images(h: int, w: int, n_noise: int, n_natural: int) -> torch.Tensor:
    return torch.cat([images(n_noise, h=h, w=w, seed=h + w),
                      natural_images(n_natural, h, w, seed=h * w)])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", [(32, 32), (20, 28), (224, 224)])
@pytest.mark.parametrize("op", sorted(THEIR_NAMES.values()))
def test_authors_op_matches_pil_at_every_magnitude_and_sign(op, size, device):
    """Every op of the authors' AutoAugment, at each of the 10 magnitudes and both signs, matches
    PIL driven as their code drives it, within one gray level (in fact exactly, on the CPU)."""
    h, w = size
    x = _pil_test_images(h, w, 2, 4) if h < 224 else _pil_test_images(h, w, 1, 1)
    pil_images = [to_pil(img) for img in x]
    for bin_ in range(10):
        magnitude = their_magnitude(op, bin_)
        ours_magnitude = _magnitude(AUTHORS, op, bin_, h, w)
        for sign in ((1, -1) if op in AUTHORS_SIGNED else (1,)):
            out = _apply_op(x.to(device), op, sign * ours_magnitude, AUTHORS).cpu()
            ref = torch.stack([from_pil(pil_reference(img, op, magnitude, sign))
                               for img in pil_images])
            assert out.dtype == torch.uint8 and out.shape == x.shape
            diff = (out.int() - ref.int()).abs().max().item()
            assert diff <= 1, (op, bin_, sign, diff)
            if device == "cpu":
                assert diff == 0, (op, bin_, sign, diff)


def test_authors_geometric_ops_fill_gray_and_rotate_counter_clockwise():
    x = torch.full((1, 3, 32, 32), 7, dtype=torch.uint8)
    for op, mag in (("ShearX", 0.3), ("ShearY", -0.3), ("TranslateX", 14.5), ("Rotate", 30.0)):
        out = _apply_op(x, op, mag, AUTHORS)
        assert set(out.unique().tolist()) == {7, 128}, op  # image or the gray fill, nothing else
    # a mark right of the centre moves up (counter-clockwise) under a positive rotation
    x = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    x[..., 15:17, 24:28] = 255
    rows = (_apply_op(x, "Rotate", 30.0, AUTHORS)[0, 0] == 255).nonzero()[:, 0]
    assert rows.float().mean() < 15


def test_authors_decisions_apply_with_probability_strictly_below_p():
    """random.random() < p: a probability-0 op never applies (torchvision's U <= p allows U = 0)."""
    n = 20000
    sub, applied, negated = _sample_autoaugment_params(n, "cifar10", AUTHORS, generator=gen(23))
    table = _POLICIES[AUTHORS]["cifar10"]
    probs = torch.tensor([[p for _, p, _ in sp] for sp in table])
    assert not applied[probs[sub] == 0].any()
    for s in range(25):
        rate = applied[sub == s].float().mean(0)
        assert (rate - probs[s]).abs().max() < 0.06, (s, rate, probs[s])
    assert abs(negated.float().mean().item() - 0.5) < 0.02


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_authors_autoaugment_equals_pil_replay_of_its_decisions(policy):
    """End to end: the batch equals PIL replaying each image's drawn sub-policy, ops and signs
    with the authors' semantics (rotation unsigned)."""
    h, w = 32, 32
    x = natural_images(64, h, w, seed=24)
    out = autoaugment(x, policy=policy, impl=AUTHORS, generator=gen(25))
    sub, applied, negated = _sample_autoaugment_params(64, policy, AUTHORS, generator=gen(25))
    table = their_table(AUTHORS_CIFAR10 if policy == "cifar10" else AUTHORS_IMAGENET)
    n_applied = 0
    for b in range(len(x)):
        img = to_pil(x[b])
        for k, (op, _, bin_) in enumerate(table[sub[b]]):
            if applied[b, k]:
                n_applied += 1
                sign = -1 if negated[b, k] and op in AUTHORS_SIGNED else 1
                img = pil_reference(img, op, their_magnitude(op, bin_), sign)
        diff = (out[b].int() - from_pil(img).int()).abs().max().item()
        assert diff <= 1, (b, table[sub[b]], applied[b], negated[b], diff)
    assert n_applied > 40


# ---------------------------------------------------------------- AutoAugment: both


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_decisions_are_per_sample_with_policy_probabilities(policy, impl):
    n = 20000
    sub, applied, negated = _sample_autoaugment_params(n, policy, impl, generator=gen(16))
    counts = torch.bincount(sub, minlength=25)
    assert (counts > 0.8 * n / 25).all() and (counts < 1.2 * n / 25).all()
    probs = torch.tensor([[p for _, p, _ in sp] for sp in _POLICIES[impl][policy]])
    for s in range(25):
        rate = applied[sub == s].float().mean(0)
        assert (rate - probs[s]).abs().max() < 0.06, (s, rate, probs[s])
    assert abs(negated.float().mean().item() - 0.5) < 0.02
    # a batch gets many different sub-policies
    small, _, _ = _sample_autoaugment_params(64, policy, impl, generator=gen(17))
    assert len(small.unique()) >= 15


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("device", DEVICES)
def test_autoaugment_shape_dtype_device_and_reproducibility(device, impl):
    x = natural_images(64, seed=18).to(device)
    before = x.clone()
    a = autoaugment(x, policy="cifar10", impl=impl, generator=gen(19, device))
    assert a.shape == x.shape and a.dtype == torch.uint8 and a.device == x.device
    assert torch.equal(x, before)
    assert torch.equal(a, autoaugment(x, policy="cifar10", impl=impl, generator=gen(19, device)))
    assert not torch.equal(a, autoaugment(x, policy="cifar10", impl=impl,
                                          generator=gen(20, device)))
    assert not torch.equal(a, x)


def test_autoaugment_rejects_unknown_names_and_float_input():
    with pytest.raises(ValueError, match="'svhn2'.*cifar10.*imagenet"):
        autoaugment(images(2), policy="svhn2", impl=AUTHORS)
    with pytest.raises(ValueError, match="implementation 'pil'.*authors, torchvision"):
        autoaugment(images(2), policy="cifar10", impl="pil")
    with pytest.raises(TypeError, match="uint8"):
        autoaugment(images(2).float(), policy="cifar10", impl=AUTHORS)


def test_empty_batches():
    x = images(0)
    assert random_crop_flip(x).shape == (0, 3, 32, 32)
    assert random_resized_crop_flip(x, size=16).shape == (0, 3, 16, 16)
    for impl in IMPLEMENTATIONS:
        assert autoaugment(x, policy="imagenet", impl=impl).shape == (0, 3, 32, 32)
