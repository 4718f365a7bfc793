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


# --- the family helper ------------------------------------------------------------------------


@pytest.fixture
def registry(monkeypatch):
    """The registry module with a private copy of its table: toy families vanish afterwards."""
    from robustarch.models import registry

    registry.list_models()  # load the real families first, so the copy holds them
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry


def _toy(num_classes: int, image_size: int, width: int, depth: int = 1, act: str = "gelu"):
    act_layer = {"gelu": torch.nn.GELU, "relu": torch.nn.ReLU}[act]
    layers = [torch.nn.Conv2d(3, width, 3, padding=1), act_layer()]
    for _ in range(depth - 1):
        layers += [torch.nn.Conv2d(width, width, 3, padding=1), act_layer()]
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(width, num_classes))


def _register_toy(registry, name="toynet", **overrides):
    kwargs = dict(
        category="CNN", build=_toy, sizes={"paper": {"width": 8}, "tiny": {"width": 4}},
        paper_params_m=0.5, description="toy family",
        variants={"deep": registry.Variant({"depth": 3}, "toy, three convs", 0.75),
                  "wide": registry.Variant({"width": 16}, "toy, 16 channels at both scales")},
        relu_twin="toy with ReLU",
    )
    return registry.register_family(name, **{**kwargs, **overrides})


def _convs(model):
    return [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def test_family_helper_registers_sizes_variants_and_relu_twin(registry):
    names = _register_toy(registry)
    assert names == ["toynet", "toynet-deep", "toynet-wide", "toynet-relu"]
    assert set(names) <= set(registry.list_models("CNN"))
    meta = {n: (registry.model_info(n).family, registry.model_info(n).paper_params_m,
                registry.model_info(n).description) for n in names}
    assert meta == {"toynet": ("toynet", 0.5, "toy family"),
                    "toynet-deep": ("toynet", 0.75, "toy, three convs"),
                    "toynet-wide": ("toynet", None, "toy, 16 channels at both scales"),
                    "toynet-relu": ("toynet", None, "toy with ReLU")}
    assert _convs(registry.create_model("toynet", 10, 32, "paper")) == [8]
    assert _convs(registry.create_model("toynet", 10, 32, "tiny")) == [4]
    assert _convs(registry.create_model("toynet-deep", 10, 32, "tiny")) == [4, 4, 4]
    assert _convs(registry.create_model("toynet-wide", 10, 32, "tiny")) == [16]  # replaces width
    relu = registry.create_model("toynet-relu", 10, 32, "paper")
    assert _convs(relu) == [8]
    assert {type(m) for m in relu.modules()} & {torch.nn.ReLU, torch.nn.GELU} == {torch.nn.ReLU}


def test_family_helper_refuses_a_taken_name_and_registers_nothing(registry):
    before = registry.list_models()
    with pytest.raises(ValueError, match="'resnet' .*registered twice"):
        _register_toy(registry, name="resnet", variants={}, relu_twin=None)
    assert registry.list_models() == before
    # A variant's name taken: none of the family's other names gets registered either.
    _register_toy(registry, name="clash-p8", variants={}, relu_twin=None)
    with pytest.raises(ValueError, match="'clash-p8' .*registered twice"):
        _register_toy(registry, name="clash", variants={"p8": registry.Variant({}, "clash")})
    assert registry.list_models() == sorted([*before, "clash-p8"])
    _register_toy(registry)
    with pytest.raises(ValueError, match="'toynet' .*registered twice"):
        _register_toy(registry)
    with pytest.raises(ValueError, match="both a 'relu' variant and a relu_twin"):
        _register_toy(registry, name="other", variants={"relu": registry.Variant({}, "x")})


def test_unknown_scale_raises_a_clear_error(registry):
    _register_toy(registry)
    with pytest.raises(ValueError, match=r"unknown scale 'huge'; use one of \('paper', 'tiny'\)"):
        registry.create_model("toynet", 10, 32, "huge")
    with pytest.raises(ValueError, match=r"unknown scale 'huge' for 'toynet-deep'"):
        registry.model_info("toynet-deep").builder(10, 32, "huge")
    with pytest.raises(ValueError, match=r"scales \['paper'\]; it needs exactly"):
        _register_toy(registry, name="half", sizes={"paper": {"width": 8}})
    with pytest.raises(ValueError, match=r"scales \['huge', 'paper', 'tiny'\]"):
        _register_toy(registry, name="extra", sizes={"paper": {}, "tiny": {}, "huge": {}})


def test_family_helper_checks_configurations_against_the_builder(registry):
    with pytest.raises(ValueError, match="'bad-typo' at scale 'paper'.*'depht'"):
        _register_toy(registry, name="bad", variants={"typo": registry.Variant({"depht": 2}, "x")})
    with pytest.raises(ValueError, match="'missing' at scale 'paper'"):
        _register_toy(registry, name="missing", sizes={"paper": {}, "tiny": {"width": 4}})

    def no_act(num_classes, image_size, width):
        return _toy(num_classes, image_size, width)

    with pytest.raises(ValueError, match="-relu twin of 'noact' needs no_act to take act="):
        _register_toy(registry, name="noact", build=no_act, variants={})
    with pytest.raises(ValueError, match="category 'MLP'"):
        _register_toy(registry, name="mlp", category="MLP")
    assert not {"bad", "missing", "noact", "mlp"} & set(registry.list_models())


def test_builds_do_not_share_configuration(registry):
    """Each build gets its own copy of the scale's data, so a builder editing it is harmless."""

    def greedy(num_classes, image_size, widths):
        widths.append(99)
        return _toy(num_classes, image_size, widths[0])

    registry.register_family("greedy", category="CNN", build=greedy, description="edits its input",
                             sizes={"paper": {"widths": [8]}, "tiny": {"widths": [4]}})
    for _ in range(2):
        assert _convs(registry.create_model("greedy", 10, 32, "tiny")) == [4]
    assert registry.model_info("greedy").family == "greedy"


def test_family_modules_register_only_through_the_family_helper():
    from pathlib import Path

    from robustarch.models import families

    modules = [p for p in Path(families.__file__).parent.glob("*.py") if p.name[0] != "_"]
    assert len(modules) >= len(BASE_ARCHS)
    for path in modules:
        source = path.read_text()
        assert "register_model" not in source, f"{path.name} calls register_model directly"
        assert "functools.partial" not in source, f"{path.name} registers a partial"
        assert source.count("\nregister_family(") == 1, path.name  # one family per module
        assert 'scale == "paper"' not in source and "scale ==" not in source, path.name
