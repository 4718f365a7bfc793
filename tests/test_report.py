import pandas as pd
import pytest

from robustarch.report import display_name, paper_table, table1_frame, to_latex, with_paper_numbers


def _summary(arch, method, acc, worst=None):
    return {"dataset": "cifar10", "arch": arch, "method": method, "n": 100,
            "accuracy": acc, "worst_case": worst, "worst_case_attacks": []}


ARCHS = pd.DataFrame([
    {"name": "resnet", "category": "CNN", "dataset": "cifar10", "image_size": 32,
     "params_m": 23.52, "paper_params_m": 23.52},
    {"name": "vit", "category": "Transformer", "dataset": "cifar10", "image_size": 32,
     "params_m": 9.78, "paper_params_m": 9.78},
])


def test_table1_layout_order_and_values():
    summaries = [
        _summary("resnet", "vanilla", {"clean": 0.956}),
        _summary("resnet", "pgd_linf", {"clean": 0.8792, "pgd_linf": 0.5418, "aa_linf": 0.454,
                                        "pgd_l2": 0.1752, "pgd_l1": 0.159}, 0.1432),
        _summary("vit", "vanilla", {"clean": 0.8673}),
    ]
    frame = table1_frame(summaries, ARCHS, "cifar10")
    assert frame["architecture"].tolist() == ["ViT", "ResNet"]  # the paper's row order
    resnet = frame.iloc[1]
    assert resnet["vanilla_acc"] == pytest.approx(95.6)
    assert resnet["worst_case"] == pytest.approx(14.32) and resnet["params_m"] == 23.52
    assert pd.isna(frame.iloc[0]["clean_acc"])  # no AT model for ViT: shown as missing
    tex = to_latex(frame, caption="Table 1")
    assert "\\toprule" in tex and "\\bottomrule" in tex
    assert "Worst-case" in tex and "14.32" in tex and "95.60" in tex
    vit_line = next(line for line in tex.splitlines() if line.strip().startswith("ViT"))
    assert "--" in vit_line


def test_paper_numbers_are_bundled_and_joined():
    paper = paper_table("table1_cifar10")
    assert len(paper) == 20 and set(paper["category"]) == {"CNN", "Transformer", "Hybrid"}
    frame = table1_frame([_summary("resnet", "vanilla", {"clean": 0.9})], ARCHS, "cifar10")
    joined = with_paper_numbers(frame, "cifar10")
    assert joined.loc[0, "paper_worst_case"] == pytest.approx(14.32)


def test_display_names():
    assert display_name("coatnet-CCTC") == "CoAtNet-CCTC"
    assert display_name("swin") == "Swin Transformer"
    assert display_name("mynet") == "mynet"
