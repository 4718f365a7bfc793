"""How the paper names architectures, methods and datasets, and the order its tables use."""

from __future__ import annotations

# The paper's names, in the order of its Table 1 (Transformers, hybrids, CNNs).
PAPER_NAMES = {
    "vit": "ViT", "mlpmixer": "MLP-Mixer", "poolformer": "PoolFormer", "swin": "Swin Transformer",
    "pvtv2": "PVTv2", "coatnet": "CoAtNet", "cpvt": "CPVT", "vitae": "ViTAE", "cct": "CCT",
    "levit": "LeViT", "mobilevit": "MobileViT", "botnet": "BoTNet", "ceit": "CeiT", "cvt": "CvT",
    "vgg": "VGG", "wideresnet": "WideResNet", "densenet": "DenseNet",
    "preactresnet": "PreActResNet", "resnet": "ResNet", "resnext": "ResNeXt",
}
METHOD_NAMES = {"vanilla": "Vanilla", "pgd_linf": "PGD-Linf", "trades": "TRADES"}


def display_name(arch: str) -> str:
    """``coatnet-CCTC`` → ``CoAtNet-CCTC``; unknown names are kept."""
    base, _, variant = arch.partition("-")
    name = PAPER_NAMES.get(base, base)
    return f"{name}-{variant}" if variant else name


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def paper_order(arch: str) -> tuple[int, str]:
    """Sort key: the paper's Table 1 order, then other architectures by name."""
    names = list(PAPER_NAMES)
    base = arch.partition("-")[0]
    return (names.index(base) if base in names else len(names), arch)
