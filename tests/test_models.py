"""Every registered architecture: builds at 32 and 224 px, any class count, forward + backward,
and matches the paper's parameter counts at scale="paper"."""

import pytest
import torch

from robustarch.models import (
    CATEGORIES,
    UnknownModelError,
    count_params,
    create_model,
    list_models,
    model_info,
)

BASE_ARCHS = [
    "resnet", "resnext", "wideresnet", "preactresnet", "vgg", "densenet", "vit", "mlpmixer",
    "poolformer", "swin", "pvtv2", "coatnet", "cpvt", "vitae", "cct", "levit", "mobilevit",
    "botnet", "ceit", "cvt",
]
VARIANTS = (
    [f"coatnet-{s}" for s in ("CCTT", "CCTC", "CTTT", "CTTC", "CCCC", "CCCT", "CTCC", "CTCT")]
    + ["vit-p8", "vit-p4", "vit-p2", "pvtv2-p4", "pvtv2-p2", "pvtv2-p1", "vit-relu"]
)


def test_registry_has_paper_architectures_and_variants():
    names = set(list_models())
    missing = [n for n in BASE_ARCHS + VARIANTS if n not in names]
    assert not missing, f"not registered: {missing}"
    for name in names:
        assert model_info(name).category in CATEGORIES


def test_unknown_architecture_lists_valid_names():
    with pytest.raises(UnknownModelError, match="unknown architecture 'resnet9000'.*resnet"):
        create_model("resnet9000")


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("image_size,batch", [(32, 4), (224, 2)])
def test_tiny_forward_backward(name, image_size, batch):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, image_size=image_size, scale="tiny")
    x = torch.rand(batch, 3, image_size, image_size)
    out = model(x)
    assert out.shape == (batch, 7)
    assert torch.isfinite(out).all()
    out.logsumexp(dim=1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), "some parameters got no gradient"


@pytest.mark.parametrize("name", [n for n in BASE_ARCHS if n in list_models()])
def test_paper_scale_forward_backward_32px(name):
    model = create_model(name, num_classes=10, image_size=32, scale="paper")
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()


def _relative_gap(name: str) -> float:
    model = create_model(name, num_classes=10, image_size=32, scale="paper")
    target = model_info(name).paper_params_m
    assert target is not None, f"{name} has no paper parameter count"
    return abs(count_params(model) / 1e6 - target) / target


def test_paper_parameter_counts():
    gaps = {n: _relative_gap(n) for n in BASE_ARCHS if n in list_models()}
    assert len(gaps) == len(BASE_ARCHS), f"missing: {set(BASE_ARCHS) - set(gaps)}"
    over_10 = {n: g for n, g in gaps.items() if g > 0.10}
    assert not over_10, f"over 10% from the paper: {over_10}"
    within_2 = [n for n, g in gaps.items() if g <= 0.02]
    assert len(within_2) >= 17, f"only {len(within_2)} within 2%: {gaps}"


def test_coatnet_layouts_match_table2():
    targets = {"CCTT": 16.99, "CCTC": 16.65, "CTTT": 17.36, "CTTC": 17.02,
               "CCCC": 16.02, "CCCT": 16.36, "CTCC": 16.38, "CTCT": 16.73}
    for layout, target in targets.items():
        model = create_model(f"coatnet-{layout}", num_classes=10, image_size=32, scale="paper")
        got = count_params(model) / 1e6
        assert abs(got - target) / target <= 0.03, f"coatnet-{layout}: {got:.2f}M vs {target}M"
