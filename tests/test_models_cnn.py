"""CNN family specifics: paper parameter counts, BoTNet's relative-position attention."""

import pytest
import torch

from robustarch.models import count_params, create_model, model_info
from robustarch.models.families.botnet import RelPosMHSA

CNN_FAMILIES = ["resnet", "preactresnet", "resnext", "wideresnet", "vgg", "densenet", "botnet"]


@pytest.mark.parametrize("name", CNN_FAMILIES)
def test_paper_count_within_2_percent(name):
    got = count_params(create_model(name, 10, 32, "paper")) / 1e6
    target = model_info(name).paper_params_m
    assert abs(got - target) / target <= 0.02, f"{name}: {got:.3f}M vs {target}M"


@pytest.mark.parametrize("name", CNN_FAMILIES)
def test_tiny_is_tiny(name):
    assert count_params(create_model(name, 10, 32, "tiny")) <= 150_000


def _naive_rel_attention(m: RelPosMHSA, x: torch.Tensor) -> torch.Tensor:
    """The definition: logit(i, j) = q_i.k_j + q_i.r_w[dx(i, j)] + q_i.r_h[dy(i, j)]."""
    b, c, h, w = x.shape
    n, d = m.heads, c // m.heads
    q, k, v = m.qkv(x).reshape(b, 3, n, d, h, w).unbind(1)
    q = q * m.scale
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[None, :] - ys[:, None] + h - 1  # (Nq, Nk)
    dx = xs[None, :] - xs[:, None] + w - 1
    qf, kf, vf = (t.reshape(b, n, d, h * w) for t in (q, k, v))
    logits = torch.einsum("bndi,bndj->bnij", qf, kf)
    logits = logits + torch.einsum("bndi,ijd->bnij", qf, m.rel_w[dx])
    logits = logits + torch.einsum("bndi,ijd->bnij", qf, m.rel_h[dy])
    out = torch.einsum("bnij,bndj->bndi", logits.softmax(-1), vf)
    return out.reshape(b, c, h, w)


def test_botnet_relative_attention_matches_definition():
    torch.manual_seed(0)
    m = RelPosMHSA(16, 5, heads=2)
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(m(x), _naive_rel_attention(m, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale", ["paper", "tiny"])
@pytest.mark.parametrize("image_size,sizes", [(32, [8, 4, 4]), (224, [14, 7, 7])])
def test_botnet_attention_only_in_last_stage(scale, image_size, sizes):
    net = create_model("botnet", 10, image_size, scale).net
    attn = [m for m in net.modules() if isinstance(m, RelPosMHSA)]
    last_stage = [m for m in net.stages[-1].modules() if isinstance(m, RelPosMHSA)]
    assert attn == last_stage
    assert [m.size for m in attn] == (sizes if scale == "paper" else sizes[:1])
