"""Hybrid family specifics: paper counts, CoAtNet layouts, PVTv2 patch sizes, ReLU variants,
equivalence with the vit-pytorch models the wrappers are built from, ViTAE's Performer."""

import math

import pytest
import torch
from torch import nn

from robustarch.models import count_params, create_model, list_models, model_info
from robustarch.models.families.coatnet import MBConv, RelativeAttention, TransformerBlock
from robustarch.models.families.vitae import NormalCell, PerformerAttention, ReductionCell

HYBRID = ["pvtv2", "coatnet", "cvt", "mobilevit", "vitae", "levit"]
HYBRID_NAMES = [n for n in list_models() if model_info(n).family in HYBRID]
COATNET_LAYOUTS = ["CCTT", "CCTC", "CTTT", "CTTC", "CCCC", "CCCT", "CTCC", "CTCT"]


def _gap(name: str) -> float:
    got = count_params(create_model(name, 10, 32, "paper")) / 1e6
    target = model_info(name).paper_params_m
    return abs(got - target) / target


def test_all_hybrid_names_registered():
    expected = (
        HYBRID
        + [f"coatnet-{layout}" for layout in COATNET_LAYOUTS]
        + ["pvtv2-p4", "pvtv2-p2", "pvtv2-p1"]
        + [f"{f}-relu" for f in ("pvtv2", "coatnet", "cvt", "vitae", "levit")]
    )
    assert set(expected) <= set(HYBRID_NAMES)
    assert all(model_info(n).category == "Hybrid" for n in HYBRID_NAMES)


@pytest.mark.parametrize("name", HYBRID + [f"coatnet-{layout}" for layout in COATNET_LAYOUTS])
def test_paper_count_within_2_percent(name):
    assert _gap(name) <= 0.02, f"{name}: {_gap(name):.2%} from Table 1/2"


@pytest.mark.parametrize("name", HYBRID_NAMES)
def test_tiny_is_tiny(name):
    assert count_params(create_model(name, 10, 32, "tiny")) <= 150_000


# --- CoAtNet -------------------------------------------------------------------------------


def _stage_kinds(net) -> list[set[str]]:
    kinds = []
    for stage in net.stages:
        kinds.append({"C" if isinstance(b, MBConv) else "T" for b in stage})
        assert all(isinstance(b, (MBConv, TransformerBlock)) for b in stage)
    return kinds


@pytest.mark.parametrize("scale", ["paper", "tiny"])
@pytest.mark.parametrize("layout", COATNET_LAYOUTS)
def test_coatnet_blocks_follow_layout(layout, scale):
    net = create_model(f"coatnet-{layout}", 10, 32, scale).net
    assert _stage_kinds(net) == [{c} for c in layout]
    if scale == "paper":
        assert [len(s) for s in net.stages] == [2, 3, 5, 2]
        x, shapes = net.stem(torch.rand(2, 3, 32, 32)), []
        for stage in net.stages:
            x = stage(x)
            shapes.append(tuple(x.shape[1:]))
        assert shapes == [(96, 8, 8), (192, 4, 4), (384, 2, 2), (768, 1, 1)]


def test_coatnet_default_is_cctt():
    a, b = create_model("coatnet", 10, 32).net, create_model("coatnet-CCTT", 10, 32).net
    assert a.layout == b.layout == "CCTT"
    assert count_params(a) == count_params(b)


@pytest.mark.parametrize("image_size,grids", [(32, [2, 1]), (224, [14, 7])])
def test_coatnet_relative_tables_sized_from_image(image_size, grids):
    net = create_model("coatnet", 10, image_size, "tiny").net
    attn = [m for m in net.modules() if isinstance(m, RelativeAttention)]
    assert [a.grid for a in attn] == grids
    assert [a.rel_bias.shape[0] for a in attn] == [(2 * g - 1) ** 2 for g in grids]


def _naive_rel_attention(m: RelativeAttention, x: torch.Tensor) -> torch.Tensor:
    """softmax(q.k / sqrt(d) + B[dy, dx]) v with B looked up by the relative offset."""
    b, n, _ = x.shape
    g = m.grid
    q, k, v = m.to_qkv(x).view(b, n, 3, m.heads, -1).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    pos = [(i // g, i % g) for i in range(n)]
    table = m.rel_bias.view(2 * g - 1, 2 * g - 1, m.heads)
    bias = torch.stack(
        [torch.stack([table[yi - yj + g - 1, xi - xj + g - 1] for yj, xj in pos]) for yi, xi in pos]
    )  # (n, n, heads)
    out = (logits + bias.permute(2, 0, 1)).softmax(-1) @ v
    return m.to_out(out.transpose(1, 2).reshape(b, n, -1))


def test_coatnet_relative_attention_matches_definition():
    torch.manual_seed(0)
    m = RelativeAttention(16, 16, grid=3, heads=2, dim_head=8)
    nn.init.normal_(m.rel_bias)
    x = torch.randn(2, 9, 16)
    torch.testing.assert_close(m(x), _naive_rel_attention(m, x), rtol=1e-5, atol=1e-5)


# --- PVTv2 ---------------------------------------------------------------------------------


def _first_grid(net, image_size: int) -> int:
    out = net.patch_embed(torch.rand(1, 3, image_size, image_size))
    return out.shape[1]


@pytest.mark.parametrize("patch", [4, 2, 1])
def test_pvtv2_patch_sizes(patch):
    net = create_model(f"pvtv2-p{patch}", 10, 32, "paper").net
    conv = net.patch_embed.proj
    assert conv.stride == (patch, patch) and conv.kernel_size == (2 * patch - 1,) * 2
    assert _first_grid(net, 32) == 32 // patch
    # Linear spatial-reduction attention (pool to 7x7) in every block of every stage.
    attns = [blk.attn for stage in net.stages for blk in stage.blocks]
    assert len(attns) == 8 and all(isinstance(a.pool, nn.AdaptiveAvgPool2d) for a in attns)
    assert [stage.blocks[0].attn.num_heads for stage in net.stages] == [1, 2, 5, 8]


def test_pvtv2_default_is_p4():
    assert _first_grid(create_model("pvtv2", 10, 32).net, 32) == 8
    assert count_params(create_model("pvtv2")) == count_params(create_model("pvtv2-p4"))


# --- ReLU variants -------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["pvtv2", "coatnet", "cvt", "vitae", "levit"])
def test_relu_variant_has_no_gelu(family):
    base = create_model(family, 10, 32, "tiny")
    relu = create_model(f"{family}-relu", 10, 32, "tiny")
    n_gelu = sum(isinstance(m, nn.GELU) for m in base.modules())
    assert n_gelu > 0
    assert not any(isinstance(m, nn.GELU) for m in relu.modules())
    assert sum(isinstance(m, nn.ReLU) for m in relu.modules()) >= n_gelu
    assert count_params(base) == count_params(relu)


# --- equivalence with the vit-pytorch models -------------------------------------------------


def _assert_same_network(ours: nn.Module, ref: nn.Module, x: torch.Tensor) -> None:
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert [v.shape for v in ours_sd.values()] == [v.shape for v in ref_sd.values()]
    ours.load_state_dict(dict(zip(ours_sd, ref_sd.values(), strict=True)))
    ours.eval()
    ref.eval()
    torch.testing.assert_close(ours(x), ref(x))


def test_mobilevit_is_vit_pytorch_mobilevit_s():
    from vit_pytorch.mobile_vit import MobileViT as Ref

    from robustarch.models.families.mobilevit import PAPER, MobileViT

    torch.manual_seed(0)
    ref = Ref(image_size=(64, 64), num_classes=10, dims=list(PAPER["dims"]),
              channels=list(PAPER["channels"]), depths=PAPER["depths"])
    ours = MobileViT(10, stem_strides=(2, 2), **PAPER)
    _assert_same_network(ours, ref, torch.rand(2, 3, 64, 64))


@pytest.mark.parametrize("image_size,grids", [(32, [16, 8, 4]), (224, [28, 14, 7])])
def test_mobilevit_block_grids(image_size, grids):
    from robustarch.models.families.mobilevit import _resizing_block

    ResizingMobileViTBlock = _resizing_block()

    net = create_model("mobilevit", 10, image_size, "paper").net
    seen = []
    for m in net.modules():
        if isinstance(m, ResizingMobileViTBlock):
            m.register_forward_hook(lambda mod, inp, out: seen.append(out.shape[-1]))
    net(torch.rand(1, 3, image_size, image_size))
    assert seen == grids


def test_levit_is_vit_pytorch_levit_at_stride_16():
    from vit_pytorch.levit import LeViT as Ref

    from robustarch.models.families.levit import PAPER, LeViT

    torch.manual_seed(0)
    ref = Ref(image_size=64, num_classes=10, dim=PAPER["dims"], depth=PAPER["depths"],
              heads=PAPER["heads"], mlp_mult=PAPER["mlp_mult"], dim_key=PAPER["dim_key"],
              dim_value=PAPER["dim_value"])
    ours = LeViT(10, 64, stem_strides=(2, 2, 2, 2), stem_act=False, **PAPER)
    _assert_same_network(ours, ref, torch.rand(2, 3, 64, 64))


@pytest.mark.parametrize("name", HYBRID)
def test_tiny_can_fit_a_batch(name):
    """A few Adam steps drive the loss on one batch down (catches dead-at-init networks)."""
    torch.manual_seed(0)
    model = create_model(name, 10, 32, "tiny")
    x, y = torch.rand(32, 3, 32, 32), torch.randint(0, 10, (32,))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("image_size,grid", [(32, 8), (224, 14)])
def test_levit_first_stage_grid(image_size, grid):
    net = create_model("levit", 10, image_size, "paper").net
    assert net.stem(torch.rand(1, 3, image_size, image_size)).shape[-1] == grid
    assert net.backbone[0].layers[0][0].pos_bias.num_embeddings == grid * grid


def test_cvt_is_cvt13_with_small_image_embedding():
    from vit_pytorch.cvt import CvT

    small, large = create_model("cvt", 10, 32).net, create_model("cvt", 10, 224).net
    assert isinstance(small, CvT) and isinstance(large, CvT)
    assert [len(stage[2].layers) for stage in small.layers] == [1, 2, 10]
    assert [stage[0].out_channels for stage in small.layers] == [64, 192, 384]
    assert small.layers[0][0].kernel_size == (3, 3) and small.layers[0][0].stride == (2, 2)
    assert large.layers[0][0].kernel_size == (7, 7) and large.layers[0][0].stride == (4, 4)
    assert count_params(large) == count_params(CvT(num_classes=10))


# --- ViTAE ---------------------------------------------------------------------------------


def _naive_performer(m: PerformerAttention, x: torch.Tensor) -> torch.Tensor:
    """T2T's FAVOR+ formula, literally (no max shift)."""
    k, q, v = m.kqv(x).split(m.out_dim, dim=-1)

    def phi(t):
        return torch.exp(t @ m.w.t() - (t * t).sum(-1, keepdim=True) / 2) / math.sqrt(
            m.w.shape[0]
        )

    kp, qp = phi(k), phi(q)
    d = torch.einsum("bti,bi->bt", qp, kp.sum(1)).unsqueeze(2)
    kptv = torch.einsum("bin,bim->bnm", v, kp)
    y = torch.einsum("bti,bni->btn", qp, kptv) / (d + 1e-8)
    return v + m.proj(y)


def test_vitae_performer_matches_definition_and_is_stable():
    torch.manual_seed(0)
    m = PerformerAttention(12, 8)
    x = torch.randn(2, 10, 12) * 0.5
    torch.testing.assert_close(m(x), _naive_performer(m, x), rtol=1e-4, atol=1e-5)
    assert not any(p is m.w for p in m.parameters())  # fixed random features
    assert torch.isfinite(m(torch.randn(2, 10, 12) * 100)).all()


@pytest.mark.parametrize("image_size,cells,grid", [(32, 2, 8), (224, 3, 14)])
def test_vitae_stem_and_token_grid(image_size, cells, grid):
    net = create_model("vitae", 10, image_size, "paper").net
    assert len(net.reduction) == cells
    assert all(isinstance(c, ReductionCell) for c in net.reduction)
    assert [c.performer for c in net.reduction] == [True] * (cells - 1) + [False]
    assert len(net.cells) == 14 and all(isinstance(c, NormalCell) for c in net.cells)
    seen = []
    net.cells[0].register_forward_hook(lambda mod, inp, out: seen.append(inp[1]))
    net(torch.rand(1, 3, image_size, image_size))
    assert tuple(seen[0]) == (grid, grid)


def test_vitae_imagenet_stem_count():
    # The unadapted ViTAE-S: 23.628M trainable + 23,040 fixed Performer features = 23.65M.
    net = create_model("vitae", 10, 224, "paper").net
    fixed = sum(b.numel() for n, b in net.named_buffers() if n.endswith("attn.w"))
    assert abs((count_params(net) + fixed) / 1e6 - 23.65) < 0.005
