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


def _toy(num_classes: int, image_size: int, width: int, depth: int = 1, act: str = "gelu", *,
         dropout: float = 0.0):
    act_layer = {"gelu": torch.nn.GELU, "relu": torch.nn.ReLU}[act]
    layers = [torch.nn.Conv2d(3, width, 3, padding=1), act_layer()]
    for _ in range(depth - 1):
        layers += [torch.nn.Conv2d(width, width, 3, padding=1), act_layer()]
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Dropout(dropout), torch.nn.Linear(width, num_classes))


TOY_NO_DROP_PATH = {"drop_path": "the toy has no residual branches"}


def _register_toy(registry, name="toynet", **overrides):
    kwargs = dict(
        category="CNN", build=_toy, sizes={"paper": {"width": 8}, "tiny": {"width": 4}},
        paper_params_m=0.5, description="toy family",
        variants={"deep": registry.Variant({"depth": 3}, "toy, three convs", 0.75),
                  "wide": registry.Variant({"width": 16}, "toy, 16 channels at both scales")},
        relu_twin="toy with ReLU", no_regularization=TOY_NO_DROP_PATH,
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

    def no_act(num_classes, image_size, width, *, dropout):
        return _toy(num_classes, image_size, width, dropout=dropout)

    with pytest.raises(ValueError, match="-relu twin of 'noact' needs no_act to take act="):
        _register_toy(registry, name="noact", build=no_act, variants={})
    with pytest.raises(ValueError, match="category 'MLP'"):
        _register_toy(registry, name="mlp", category="MLP")
    assert not {"bad", "missing", "noact", "mlp"} & set(registry.list_models())


def test_builds_do_not_share_configuration(registry):
    """Each build gets its own copy of the scale's data, so a builder editing it is harmless."""

    def greedy(num_classes, image_size, widths, *, dropout):
        widths.append(99)
        return _toy(num_classes, image_size, widths[0], dropout=dropout)

    registry.register_family("greedy", category="CNN", build=greedy, description="edits its input",
                             sizes={"paper": {"widths": [8]}, "tiny": {"widths": [4]}},
                             no_regularization=TOY_NO_DROP_PATH)
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


def test_family_helper_passes_the_rates_and_refuses_what_a_family_cannot_apply(registry):
    _register_toy(registry)
    drop = [m for m in registry.create_model("toynet-deep", 10, 32, "tiny", dropout=0.25).modules()
            if isinstance(m, torch.nn.Dropout)]
    assert [m.p for m in drop] == [0.25]
    info = registry.model_info("toynet-relu")
    assert info.regularizers == ("dropout",) and info.no_regularization == TOY_NO_DROP_PATH
    with pytest.raises(ValueError, match="'toynet' cannot apply drop_path=0.1: the toy has no "
                                         "residual branches.*training.regularization.drop_path"):
        registry.create_model("toynet", 10, 32, "tiny", drop_path=0.1)
    for bad in (1.0, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
            registry.create_model("toynet", 10, 32, "tiny", dropout=bad)
    # Every regularizer is applied (a builder keyword) or explained, never both, never neither.
    with pytest.raises(ValueError, match=r"'silent'.*neither: \['drop_path'\]"):
        _register_toy(registry, name="silent", no_regularization=None)
    with pytest.raises(ValueError, match=r"'both'.*both: \['dropout'\]"):
        _register_toy(registry, name="both", no_regularization={**TOY_NO_DROP_PATH,
                                                                "dropout": "no place"})
    with pytest.raises(ValueError, match="unknown regularizers"):
        _register_toy(registry, name="typo", no_regularization={**TOY_NO_DROP_PATH,
                                                                "drop_pth": "typo"})
    assert not {"silent", "both", "typo"} & set(registry.list_models())


# --- regularization, registry-wide ------------------------------------------------------------

FAMILIES = sorted({model_info(n).family for n in list_models()})


def _rates(model: torch.nn.Module) -> dict[str, set[float]]:
    """Every dropout and drop-path rate in ``model``, found by walking its modules: torch's
    dropout modules, any module with a ``drop_prob`` (timm's, vit-pytorch's and our DropPath)
    and our attention modules' ``attn_dropout`` (a float, for the fused attention kernel)."""
    rates: dict[str, set[float]] = {"dropout": set(), "drop_path": set()}
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            rates["dropout"].add(round(float(module.p), 6))
        if hasattr(module, "drop_prob"):
            rates["drop_path"].add(round(float(module.drop_prob), 6))
        if hasattr(module, "attn_dropout"):
            rates["dropout"].add(round(float(module.attn_dropout), 6))
    return rates


@pytest.mark.parametrize("name", list_models())
def test_no_model_has_dropout_or_drop_path_by_default(name):
    """The default (training.regularization 0) is no regularization anywhere, including the
    libraries' own defaults (timm's Swin: stochastic depth 0.1; vit-pytorch's CCT: attention
    dropout and stochastic depth 0.1)."""
    for size in (32, 224):
        rates = _rates(create_model(name, 10, size, "tiny"))
        assert rates["dropout"] <= {0.0} and rates["drop_path"] <= {0.0}, (size, rates)


def _build(name, seed=0, **rates):
    torch.manual_seed(seed)
    return create_model(name, 10, 32, "tiny", **rates)


def _train_forward(model, seed):
    """A training-mode forward pass with the global RNG (what dropout draws from) at ``seed``."""
    model.train()
    torch.manual_seed(seed)
    return model(torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(7)))


@pytest.mark.parametrize("family", FAMILIES)
def test_rates_reach_every_family_and_change_no_parameter(family):
    info = model_info(family)
    assert set(info.regularizers) | set(info.no_regularization) == {"drop_path", "dropout"}
    rates = {"drop_path": 0.3, "dropout": 0.4}
    for key in info.no_regularization:  # a rate the architecture has no place for: refused
        with pytest.raises(ValueError, match=f"cannot apply {key}=0.3|cannot apply {key}=0.4"):
            _build(family, **{key: rates[key]})
        rates.pop(key)
    plain, regularized = _build(family), _build(family, **rates)
    found = _rates(regularized)
    if "dropout" in rates:
        assert max(found["dropout"]) == pytest.approx(0.4)
    if "drop_path" in rates:  # linear from 0 at the first residual block to 0.3 at the last
        assert max(found["drop_path"]) == pytest.approx(0.3) and min(found["drop_path"]) < 0.3
    # The same parameters and initial weights, so either model's file loads into the other.
    a, b = plain.state_dict(), regularized.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with torch.no_grad():
        # Eval mode: the same function (before training-mode passes move BatchNorm statistics).
        x = torch.rand(4, 3, 32, 32)
        assert torch.equal(plain.eval()(x), regularized.eval()(x))
        # Training mode: no randomness at rate 0; every rate draws some.
        assert torch.equal(_train_forward(plain, 1), _train_forward(plain, 2))
        for key, rate in rates.items():
            one = _build(family, **{key: rate})
            assert not torch.equal(_train_forward(one, 1), _train_forward(one, 2)), key
