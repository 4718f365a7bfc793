import torch

from robustarch.data.loader import DeviceLoader, make_augmentation


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
                          augmentation=make_augmentation("crop_flip", None, 32))
    xb, yb = next(iter(loader))
    assert xb.dtype == torch.float32 and xb.shape == (100, 3, 32, 32)
    assert xb.min() >= 0 and xb.max() <= 1
    assert torch.equal(yb, digits["y_test"][:100])
    # augmentation changed the images but not their overall intensity much
    plain = digits["x_test"][:100].float() / 255
    assert not torch.equal(xb, plain)
    assert abs(xb.mean() - plain.mean()) < 0.05


def test_state_dict_resumes_the_same_stream(digits):
    aug = make_augmentation("crop_flip", None, 32)
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
