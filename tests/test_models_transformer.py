"""Family-specific checks for the ViT-like architectures (vit, cpvt, ceit, cct, mlpmixer,
poolformer, swin): exact configurations, variants, and that library-built models are the
library's family."""

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from robustarch.models import count_params, create_model, list_models, model_info
from robustarch.models.families.swin import stage_windows

FAMILIES = {
    # name: (Table 1 params in M, category)
    "vit": (9.78, "Transformer"),
    "cpvt": (9.49, "Hybrid"),
    "ceit": (5.56, "Hybrid"),
    "cct": (3.76, "Hybrid"),
    "mlpmixer": (0.68, "Transformer"),
    "poolformer": (11.39, "Transformer"),
    "swin": (27.42, "Transformer"),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_paper_params_within_2_percent(name):
    target, category = FAMILIES[name]
    info = model_info(name)
    assert info.paper_params_m == target and info.category == category
    got = count_params(create_model(name, 10, 32, "paper")) / 1e6
    assert abs(got - target) / target <= 0.02, f"{name}: {got:.3f}M vs {target}M"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_relu_variant_has_no_gelu(name):
    variant = f"{name}-relu"
    assert variant in list_models()
    info = model_info(variant)
    assert info.family == name and info.paper_params_m is None
    model = create_model(variant, 10, 32, "tiny")
    assert not any(isinstance(m, nn.GELU) for m in model.modules())
    assert any(isinstance(m, nn.ReLU) for m in model.modules())
    if name == "cct":  # vit-pytorch's CCT calls its activation functionally
        assert all(b.activation is F.relu for b in model.net.classifier.blocks)
    gelu = create_model(name, 10, 32, "tiny")
    assert any(isinstance(m, nn.GELU) for m in gelu.modules()) or name == "cct"
    assert count_params(gelu) == count_params(model)


def test_vit_patch_variants():
    assert count_params(create_model("vit-p4", 10, 32, "paper")) == count_params(
        create_model("vit", 10, 32, "paper")
    )
    assert model_info("vit-p4").paper_params_m == 9.78
    for p in (8, 4, 2):
        assert model_info(f"vit-p{p}").family == "vit"
        # The name gives the patch at 32 px (Table 3's study); over 64 px patches are 4x larger,
        # so each variant keeps its grid relative to vit's (7x7, 14x14, 28x28 at 224 px).
        for size, patch in ((32, p), (64, p), (224, 4 * p)):
            net = create_model(f"vit-p{p}", 10, size, "tiny").net
            assert net.patch_embed.kernel_size == (patch, patch)
            assert net.pos_embed.shape[1] == (size // patch) ** 2 + 1


def test_plain_patch_families_get_the_imagenet_grid_at_224px():
    """ViT, CPVT and MLP-Mixer cut 16 px patches at 224 px: the 14x14 grid of ViT-B/16 and of
    the other families' ImageNet stems (CeiT, CCT), not 56x56 tokens of 4 px."""
    grids = {}
    for name in ("vit", "cpvt", "mlpmixer", "ceit", "cct"):
        net = create_model(name, 10, 224, "tiny").net
        if name == "cct":
            grids[name] = net.classifier.positional_emb.shape[1]
        elif name == "mlpmixer":
            assert net.stem.kernel_size == (16, 16)
            grids[name] = net.blocks[0].token_mlp.net[0].in_features
        elif name == "cpvt":
            assert net.patch_embed.kernel_size == (16, 16)
            grids[name] = net.grid**2
        else:
            grids[name] = net.pos_embed.shape[1] - 1
    assert set(grids.values()) == {14 * 14}, grids
    assert create_model("cpvt", 10, 32, "tiny").net.grid == 8  # 32 px: patch 4 as before


def test_vit_paper_config():
    net = create_model("vit", 10, 32, "paper").net
    assert len(net.blocks) == 6 and net.patch_embed.out_channels == 512
    assert net.blocks[0].attn.heads == 8
    assert net.blocks[0].ff.net[0].out_features == 512
    assert [type(m) for m in net.head] == [nn.LayerNorm, nn.Linear, nn.GELU, nn.Linear]


def test_cpvt_has_peg_and_no_absolute_position_embedding():
    net = create_model("cpvt", 10, 32, "paper").net
    assert not hasattr(net, "pos_embed")
    assert net.peg.proj.groups == 512 and net.peg.proj.kernel_size == (3, 3)
    # Position information comes from the PEG: moving content changes the output.
    x = torch.rand(1, 3, 32, 32)
    net.eval()
    with torch.no_grad():
        assert not torch.allclose(net(x), net(torch.roll(x, 4, dims=3)))


def test_poolformer_is_timm_poolformer_s12_except_stem():
    ours = create_model("poolformer", 10, 32, "paper").net.state_dict()
    ref = timm.create_model("poolformer_s12", num_classes=10).state_dict()
    assert ours.keys() == ref.keys()
    diff = [k for k in ours if ours[k].shape != ref[k].shape]
    assert diff == ["stem.conv.weight"] and ours["stem.conv.weight"].shape[-1] == 3
    # 224 px keeps timm's ImageNet stem.
    big = create_model("poolformer", 10, 224, "paper").net.state_dict()
    assert all(big[k].shape == ref[k].shape for k in ref)


def test_swin_is_timm_swin_t_with_small_patch_and_windows():
    net = create_model("swin", 10, 32, "paper").net
    ref = timm.create_model("swin_tiny_patch4_window7_224", num_classes=10)
    ours_sd, ref_sd = net.state_dict(), ref.state_dict()
    assert ours_sd.keys() == ref_sd.keys()
    diff = {k.split(".")[-1] for k in ours_sd if ours_sd[k].shape != ref_sd[k].shape}
    assert diff <= {"weight", "relative_position_bias_table", "relative_position_index"}
    assert net.patch_embed.proj.kernel_size == (2, 2)


@pytest.mark.parametrize("image_size", [32, 224])
def test_swin_windows_tile_every_stage(image_size):
    net = create_model("swin", 10, image_size, "tiny").net
    assert len(net.layers) == 4
    for stage in net.layers:
        for block in stage.blocks:
            h, w = block.input_resolution
            assert h % block.window_size[0] == 0 and w % block.window_size[1] == 0


def test_stage_windows():
    assert stage_windows(16, 4) == (4, 4, 4, 2)
    assert stage_windows(56, 7) == (7, 7, 7, 7)
    with pytest.raises(ValueError):
        stage_windows(12, 4)


def test_cct_is_cct_7_3x1():
    net = create_model("cct", 10, 32, "paper").net
    convs = [m for m in net.tokenizer.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 and convs[0].kernel_size == (3, 3) and convs[0].out_channels == 256
    assert len(net.classifier.blocks) == 7
    assert net.classifier.blocks[0].linear1.out_features == 512
    assert net.classifier.positional_emb.shape[1] == 16 * 16  # sequence pooling: no class token


def test_ceit_token_grid_and_leff():
    for size, grid in ((32, 8), (224, 14)):
        net = create_model("ceit", 10, size, "tiny").net
        assert net.grid == grid and net.pos_embed.shape[1] == grid**2 + 1
    net = create_model("ceit", 10, 32, "paper").net
    assert len(net.blocks) == 12
    dw = net.blocks[0].leff.dwconv[0]
    assert dw.groups == dw.in_channels == 768 and dw.kernel_size == (3, 3)


@pytest.mark.parametrize("name", [n for n in list_models() if model_info(n).family in FAMILIES])
def test_tiny_is_small(name):
    assert count_params(create_model(name, 10, 32, "tiny")) <= 150_000
