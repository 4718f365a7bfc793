"""Batched on-device augmentations: shapes/dtypes, per-sample randomness, reproducibility, and
agreement with torchvision (RandomCrop+flip, RandomResizedCrop, v2 AutoAugment ops and policies)."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from robustarch.data.augment import (
    _POLICIES,
    _SIGNED_OPS,
    _apply_op,
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


# --------------------------------------------------------------------------- AutoAugment


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


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_policy_tables_and_magnitudes_match_torchvision(policy):
    aa = tv_autoaugment(policy)
    assert [tuple(sp) for sp in aa._policies] == [tuple(sp) for sp in _POLICIES[policy]]
    assert len(_POLICIES[policy]) == 25
    for sp in _POLICIES[policy]:
        for op, _, bin_ in sp:
            tv_mag = tv_magnitude(aa, op, bin_, 32, 40)
            expected = 255.0 * tv_mag if op == "Solarize" else tv_mag  # uint8 threshold
            assert _magnitude(op, bin_, 32, 40) == expected, op
            assert (op in _SIGNED_OPS) == aa._AUGMENTATION_SPACE[op][1], op


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_each_batched_op_equals_torchvision_per_image(policy):
    """Every (op, signed magnitude) of the policy, applied to a batch, equals torchvision v2
    AutoAugment's op applied image by image."""
    aa = tv_autoaugment(policy)
    x = torch.cat([natural_images(5, 24, 28, seed=13), images(1, h=24, w=28)])
    seen = set()
    for sp in _POLICIES[policy]:
        for op, _, bin_ in sp:
            mag, tv_mag = _magnitude(op, bin_, 24, 28), tv_magnitude(aa, op, bin_, 24, 28)
            for sign in ((1, -1) if op in _SIGNED_OPS else (1,)):
                m = sign * mag
                if (op, m) in seen:
                    continue
                seen.add((op, m))
                out = _apply_op(x, op, m)
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
    out = autoaugment(x, policy=policy, generator=gen(15))
    sub, applied, negated = _sample_autoaugment_params(96, policy, generator=gen(15))
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


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_decisions_are_per_sample_with_policy_probabilities(policy):
    n = 20000
    sub, applied, negated = _sample_autoaugment_params(n, policy, generator=gen(16))
    counts = torch.bincount(sub, minlength=25)
    assert (counts > 0.8 * n / 25).all() and (counts < 1.2 * n / 25).all()
    probs = torch.tensor([[p for _, p, _ in sp] for sp in _POLICIES[policy]])
    for s in range(25):
        rate = applied[sub == s].float().mean(0)
        assert (rate - probs[s]).abs().max() < 0.06, (s, rate, probs[s])
    assert abs(negated.float().mean().item() - 0.5) < 0.02
    # a batch gets many different sub-policies
    small, _, _ = _sample_autoaugment_params(64, policy, generator=gen(17))
    assert len(small.unique()) >= 15


@pytest.mark.parametrize("device", DEVICES)
def test_autoaugment_shape_dtype_device_and_reproducibility(device):
    x = natural_images(64, seed=18).to(device)
    before = x.clone()
    a = autoaugment(x, policy="cifar10", generator=gen(19, device))
    assert a.shape == x.shape and a.dtype == torch.uint8 and a.device == x.device
    assert torch.equal(x, before)
    assert torch.equal(a, autoaugment(x, policy="cifar10", generator=gen(19, device)))
    assert not torch.equal(a, autoaugment(x, policy="cifar10", generator=gen(20, device)))
    assert not torch.equal(a, x)


def test_autoaugment_rejects_unknown_policy_and_float_input():
    with pytest.raises(ValueError, match="'svhn2'.*cifar10.*imagenet"):
        autoaugment(images(2), policy="svhn2")
    with pytest.raises(TypeError, match="uint8"):
        autoaugment(images(2).float(), policy="cifar10")


def test_empty_batches():
    x = images(0)
    assert random_crop_flip(x).shape == (0, 3, 32, 32)
    assert random_resized_crop_flip(x, size=16).shape == (0, 3, 16, 16)
    assert autoaugment(x, policy="imagenet").shape == (0, 3, 32, 32)
