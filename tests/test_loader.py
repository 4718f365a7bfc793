import pytest
import torch

from robustarch.data import augment
from robustarch.data.loader import DeviceLoader, make_augmentation
from robustarch.settings import Augmentation

CROP_FLIP = Augmentation(crop="crop_flip", autoaugment=None, autoaugment_impl="authors")


def test_epoch_covers_every_sample_once_in_a_seeded_order(digits):
    x, y = digits["x_test"], digits["y_test"]
    loader = DeviceLoader(x, y, batch_size=64, shuffle=True, seed=3)
    seen = torch.cat([yb for _, yb in loader])
    assert len(loader) == 6 and len(seen) == len(y)
    assert torch.equal(torch.sort(seen).values, torch.sort(y).values)
    first = [xb for xb, _ in DeviceLoader(x, y, batch_size=64, shuffle=True, seed=3)]
    again = [xb for xb, _ in DeviceLoader(x, y, batch_size=64, shuffle=True, seed=3)]
    other = [xb for xb, _ in DeviceLoader(x, y, batch_size=64, shuffle=True, seed=4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])


def test_batches_are_float_images_in_unit_range(digits):
    loader = DeviceLoader(digits["x_test"], digits["y_test"], batch_size=100, shuffle=False,
                          augmentation=make_augmentation(CROP_FLIP, 32))
    xb, yb = next(iter(loader))
    assert xb.dtype == torch.float32 and xb.shape == (100, 3, 32, 32)
    assert xb.min() >= 0 and xb.max() <= 1
    assert torch.equal(yb, digits["y_test"][:100])
    # augmentation changed the images but not their overall intensity much
    plain = digits["x_test"][:100].float() / 255
    assert not torch.equal(xb, plain)
    assert abs(xb.mean() - plain.mean()) < 0.05


def test_state_dict_resumes_the_same_stream(digits):
    aug = make_augmentation(CROP_FLIP, 32)
    loader = DeviceLoader(digits["x_test"], digits["y_test"], batch_size=90, shuffle=True,
                          augmentation=aug, seed=0)
    list(loader)  # one epoch
    state = loader.state_dict()
    expected = [xb for xb, _ in loader]
    resumed = DeviceLoader(digits["x_test"], digits["y_test"], batch_size=90, shuffle=True,
                           augmentation=aug, seed=123)
    resumed.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(expected, [xb for xb, _ in resumed],
                                                 strict=True))


# A policy whose every sub-policy inverts the image: what AutoAugment saw shows in the output.
_INVERT = ((("Invert", 1.0, 0), ("Invert", 0.0, 0)),)


@pytest.mark.parametrize("impl", ["authors", "torchvision"])
def test_autoaugment_sees_the_image_before_the_padded_crop(monkeypatch, impl):
    """The authors' CIFAR-10 order: CIFAR10Policy(), then RandomCrop(32, padding=4) and the flip.
    Inverting before the crop leaves the padding black (0); inverting after would make it
    white (255)."""
    monkeypatch.setitem(augment._POLICIES[impl], "test_invert", _INVERT)
    aug = make_augmentation(Augmentation("crop_flip", "test_invert", impl), 32)
    x = torch.full((256, 3, 32, 32), 100, dtype=torch.uint8)
    out = aug(x, torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) == {0, 155}  # inverted image, black padding
    assert (out == 0).flatten(1).any(1).float().mean() > 0.5  # most crops show some padding


@pytest.mark.parametrize("crop", ["resized_crop", "resized_crop_flip"])
def test_autoaugment_sees_the_resized_crop(monkeypatch, crop):
    """The authors' ImageNette order: RandomResizedCrop(224), then ImageNetPolicy(): AutoAugment
    gets the crop at image_size (its translations are fractions of that size)."""
    monkeypatch.setitem(augment._POLICIES["authors"], "test_invert", _INVERT)
    seen = []

    def spy(x, **kwargs):
        seen.append(x.shape)
        return real(x, **kwargs)

    real = augment.autoaugment
    monkeypatch.setattr(augment, "autoaugment", spy)
    aug = make_augmentation(Augmentation(crop, "test_invert", "authors"), 24)
    x = torch.randint(0, 256, (8, 3, 40, 40), dtype=torch.uint8)
    out = aug(x, torch.Generator().manual_seed(0))
    assert seen == [torch.Size([8, 3, 24, 24])] and out.shape == (8, 3, 24, 24)


def test_resized_crop_has_no_flip_and_resized_crop_flip_flips(monkeypatch):
    calls = []
    real = augment.random_resized_crop_flip

    def spy(x, **kwargs):
        calls.append(kwargs["flip"])
        return real(x, **kwargs)

    monkeypatch.setattr(augment, "random_resized_crop_flip", spy)
    x = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    for crop in ("resized_crop", "resized_crop_flip"):
        make_augmentation(Augmentation(crop, None, "authors"), 24)(x, torch.Generator())
    assert calls == [False, True]


def test_unknown_crop_is_refused():
    with pytest.raises(ValueError, match="unknown crop 'pad'.*crop_flip, resized_crop"):
        make_augmentation(Augmentation("pad", None, "authors"), 32)


# --- full frames (ImageNette's training split) ------------------------------------------------

RESIZED_CROP = Augmentation(crop="resized_crop", autoaugment=None, autoaugment_impl="authors")


def _frames(n: int = 40):
    """Frames of value 50 on a 20x36 canvas of 255s: landscape 16x36 and portrait 30x20 (stored
    transposed), with their sizes."""
    x = torch.full((n, 3, 20, 36), 255, dtype=torch.uint8)
    sizes = torch.tensor([(16, 36) if i % 2 else (30, 20) for i in range(n)])
    for i, (h, w) in enumerate(sizes.tolist()):
        rows, cols = min(h, w), max(h, w)
        x[i, :, :rows, :cols] = 50
    return x, torch.arange(n), sizes  # one label per image: batches show their indices


def test_full_frames_reach_the_crop_with_their_sizes(monkeypatch):
    x, y, sizes = _frames()
    seen = []
    real = augment.random_resized_crop_flip

    def spy(images, **kwargs):
        seen.append(kwargs["sizes"])
        return real(images, **kwargs)

    monkeypatch.setattr(augment, "random_resized_crop_flip", spy)
    loader = DeviceLoader(x, y, sizes, batch_size=16, shuffle=True, seed=1,
                          augmentation=make_augmentation(RESIZED_CROP, 24))
    batches = list(loader)
    assert [tuple(xb.shape) for xb, _ in batches] == [(16, 3, 24, 24)] * 2 + [(8, 3, 24, 24)]
    order = torch.cat([yb for _, yb in batches])
    assert sorted(order.tolist()) == list(range(40))
    assert torch.equal(torch.cat(seen), sizes[order])  # each batch's own frame sizes
    # every crop lies inside its frame: only the frame's 50s, never the canvas' 255s
    assert all(torch.equal(xb, torch.full_like(xb, 50 / 255)) for xb, _ in batches)


def test_full_frames_need_a_resized_crop():
    x, y, sizes = _frames(8)
    with pytest.raises(ValueError, match="no augmentation given"):
        DeviceLoader(x, y, sizes, batch_size=4, shuffle=False)
    with pytest.raises(ValueError, match="not within the 20x36 canvas"):
        DeviceLoader(x, y, sizes * 2, batch_size=4, shuffle=False,
                     augmentation=make_augmentation(RESIZED_CROP, 24))
    loader = DeviceLoader(x, y, sizes, batch_size=4, shuffle=False,
                          augmentation=make_augmentation(CROP_FLIP, 32))
    with pytest.raises(ValueError, match="full frames.*augment.crop is 'crop_flip'"):
        next(iter(loader))
