from pathlib import Path

import pandas as pd
import pytest

from robustarch.report.latex import to_latex
from robustarch.report.names import display_name
from robustarch.report.paper import paper_table, with_paper_numbers
from robustarch.report.table1 import table1_frame


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
    assert "Worst case" in tex and "14.32" in tex and "95.60" in tex
    vit_line = next(line for line in tex.splitlines() if line.strip().startswith("ViT"))
    assert "--" in vit_line


def test_row_order_reproduces_the_papers_tables_1_and_2():
    """The ordering rule, applied to the paper's own rows in another order, gives back the order
    the paper prints them in: Table 1 by category (Transformer, Hybrid, CNN), then worst case,
    highest first; Table 2 by worst case."""
    from robustarch.report.table1 import by_worst_case

    paper = paper_table("table1_cifar10")
    shuffled = paper.sort_values("architecture").to_dict("records")
    assert [r["architecture"] for r in by_worst_case(shuffled)] == paper["architecture"].tolist()
    table2 = paper_table("table2_coatnet_stages")
    shuffled = table2.sort_values("stages").to_dict("records")
    assert [r["stages"] for r in by_worst_case(shuffled, category=None)] == table2[
        "stages"].tolist()


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


def _study_summary(arch, method, clean, worst=None, dataset="digits"):
    acc = {"clean": clean}
    if worst is not None:
        acc.update({"pgd_linf": worst + 0.05, "aa_linf": worst + 0.01, "pgd_l2": worst + 0.02,
                    "pgd_l1": worst})
    return {"dataset": dataset, "arch": arch, "method": method, "n": 100, "accuracy": acc,
            "worst_case": worst, "worst_case_attacks": []}


def test_table2_rows_layouts_and_paper_join():
    from robustarch.report.paper import with_paper_columns
    from robustarch.report.studies import study_frame, table2_rows

    summaries = [_study_summary("coatnet", "pgd_linf", 0.8, 0.3),
                 _study_summary("coatnet-CCCC", "pgd_linf", 0.82, 0.25),
                 _study_summary("coatnet", "vanilla", 0.9)]
    frame = study_frame(summaries, table2_rows(["coatnet", "coatnet-CCCC"]))
    assert frame["architecture"].tolist() == ["CoAtNet-CCTT", "CoAtNet-CCCC"]
    assert frame["stages"].tolist() == ["CCTT", "CCCC"]
    assert frame["vanilla_acc"].iloc[0] == pytest.approx(90.0)
    assert pd.isna(frame["vanilla_acc"].iloc[1])  # not trained: a missing cell
    assert frame["worst_case"].tolist() == pytest.approx([30.0, 25.0])
    joined = with_paper_columns(frame, "table2_coatnet_stages", ["architecture", "stages"])
    assert joined.loc[1, "paper_worst_case"] == pytest.approx(27.64)


def test_table3_patch_sizes_and_activation_twins():
    from robustarch.report.studies import activation_rows, patch_size, study_frame, table3_rows

    assert [patch_size(a) for a in ("vit", "vit-p8", "pvtv2", "pvtv2-p1")] == [4, 8, 4, 1]
    with pytest.raises(ValueError, match="no known patch size"):
        patch_size("resnet")
    rows = table3_rows(["vit-p8", "vit"])
    assert [(r["architecture"], r["patch_size"]) for r in rows] == [("ViT", 8), ("ViT", 4)]
    rows = activation_rows(["vit"])
    assert [(r["activation"], r["arch"]) for r in rows] == [("GELU", "vit"), ("ReLU", "vit-relu")]
    frame = study_frame([_study_summary("vit-relu", "pgd_linf", 0.5, 0.2)], rows)
    assert "vanilla_acc" not in frame.columns  # a study without vanilla models
    assert frame["worst_case"].isna().tolist() == [True, False]


def test_trades_table_uses_the_trades_models():
    from robustarch.report.studies import study_frame, trades_rows

    summaries = [_study_summary("resnet", "trades", 0.7, 0.31),
                 _study_summary("resnet", "pgd_linf", 0.8, 0.2)]
    frame = study_frame(summaries, trades_rows(["resnet"]), at_method="trades")
    assert frame["clean_acc"].iloc[0] == pytest.approx(70.0)
    assert frame["worst_case"].iloc[0] == pytest.approx(31.0)
    assert "vanilla_acc" not in frame.columns


def test_l1_penalty_figure_data_and_plot(tmp_path):
    from robustarch.report.figures import figure3, l1_penalty_frame

    summaries = [_study_summary("resnet", "pgd_linf", 0.8, 0.2),
                 _study_summary("resnet", "pgd_linf_l1-5e-05", 0.7, 0.25)]
    frame = l1_penalty_frame(summaries, [5e-05, 0, 1e-4], "resnet")
    assert frame["lambda"].tolist() == [0, 5e-05, 1e-4]
    assert frame["method"].tolist() == ["pgd_linf", "pgd_linf_l1-5e-05", "pgd_linf_l1-0.0001"]
    assert frame["worst_case"].iloc[:2].tolist() == pytest.approx([20.0, 25.0])
    assert pd.isna(frame["clean_acc"].iloc[2])
    figure3(frame, tmp_path / "fig.pdf", arch="resnet")
    assert (tmp_path / "fig.pdf").read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir()] == ["fig.pdf"]


def test_strong_table_ranks_and_correlates_the_two_protocols():
    from robustarch.report.strong import P_ROW, RHO_ROW, spearman, strong_frame

    archs = pd.DataFrame([{"name": n, "category": c} for n, c in
                          [("vit", "Transformer"), ("pvtv2", "Hybrid"), ("resnet", "CNN"),
                           ("vgg", "CNN")]])
    # (clean, paper pgd_linf, strong pgd_linf_es, paper worst case, worst case over all)
    numbers = {"vit": (0.8, 0.40, 0.38, 0.30, 0.20), "pvtv2": (0.8, 0.50, 0.45, 0.40, 0.35),
               "resnet": (0.9, 0.45, 0.30, 0.35, 0.25), "vgg": (0.85, 0.30, 0.29, 0.20, 0.15)}
    summaries = [{"dataset": "cifar10", "arch": a, "method": "pgd_linf", "n": 100,
                  "accuracy": {"clean": c, "pgd_linf": p, "pgd_linf_es": s},
                  "worst_case": w, "worst_case_all": wa}
                 for a, (c, p, s, w, wa) in numbers.items()]
    summaries.append({**summaries[0], "method": "vanilla"})  # other methods are ignored
    frame, rho = strong_frame(summaries, archs, "cifar10", strong_attacks=["pgd_linf_es"],
                              counterparts={"pgd_linf_es": "pgd_linf"})
    # Table 1's order: categories, then the paper protocol's worst case, highest first
    assert frame["architecture"].tolist() == ["ViT", "PVTv2", "ResNet", "VGG"]
    assert frame["category"].tolist() == ["Transformer", "Hybrid", "CNN", "CNN"]
    assert frame["worst_case_all"].tolist() == pytest.approx([20, 35, 25, 15])
    assert frame["rank_paper"].tolist() == [3, 1, 2, 4]
    assert frame["rank_strong"].tolist() == [3, 1, 2, 4]
    assert rho["architecture"].tolist() == [RHO_ROW, P_ROW]
    # pgd_linf (40, 50, 30, 45) vs pgd_linf_es (38, 45, 29, 30): ranks 3 1 4 2 vs 2 1 4 3
    assert rho.loc[0, "pgd_linf_es"] == pytest.approx(0.8)
    assert rho.loc[0, "worst_case_all"] == pytest.approx(1.0)
    assert 0 <= rho.loc[1, "pgd_linf_es"] <= 1
    assert all(pd.isna(v) for v in spearman([1, 2], [2, 1]))  # too few pairs to say
    assert spearman([1, None, 3, 4], [1, 5, 3, 4])[0] == pytest.approx(1.0)  # missing: dropped


def test_training_curves_one_panel_per_model_and_a_png_twin(tmp_path):
    import matplotlib

    from robustarch.report.jobs import write_training_curves

    paths = []
    for arch, epochs in (("vit", 3), ("resnet", 1)):
        path = tmp_path / f"{arch}.csv"
        pd.DataFrame({"epoch": range(1, epochs + 1), "lr": 0.1, "train_loss": 2.0,
                      "train_acc": 0.3, "test_clean_acc": 0.4, "time_s": 1.0}).to_csv(path)
        paths.append(path)
    pdf, png = tmp_path / "curves.pdf", tmp_path / "curves.png"
    write_training_curves(metrics=paths, architectures=["vit", "resnet"], dataset="digits",
                          method="pgd_linf", pdf=pdf, png=png, log=lambda m: None)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert png.read_bytes().startswith(b"\x89PNG")
    image = matplotlib.image.imread(png)
    assert image.shape[1] > 2 * image.shape[0]  # two panels side by side
    with pytest.raises(ValueError, match="2 metrics files for 1 architectures"):
        write_training_curves(metrics=paths, architectures=["vit"], dataset="digits",
                              method="pgd_linf", pdf=pdf, png=png, log=lambda m: None)


def test_run_config_is_the_validated_config_as_yaml(tmp_path):
    import yaml

    from robustarch.config import load_config
    from robustarch.report.jobs import write_run_config

    config = load_config(Path(__file__).resolve().parents[1] / "config.yaml")
    write_run_config(config=config, yaml_path=tmp_path / "config.yaml", log=lambda m: None)
    text = (tmp_path / "config.yaml").read_text()
    assert text.startswith("# The validated configuration of this run")
    assert yaml.safe_load(text) == config
    assert list(yaml.safe_load(text)) == list(config)  # in the config's own order


def test_latex_escapes_text_and_groups_must_be_adjacent():
    from robustarch.report.latex import Layout, TeX, tex_to_text

    frame = pd.DataFrame({"architecture": ["a_b & 50%"], "clean_acc": [-0.001],
                          "pgd_linf": [-1.234]})
    tex = to_latex(frame)
    assert r"a\_b \& 50\%" in tex and "& 0.00 &" in tex and r"$-$1.23" in tex
    with pytest.raises(ValueError, match="not adjacent"):
        to_latex(frame, layout=Layout(columns=["clean_acc", "architecture", "pgd_linf"],
                                      groups=[("g", ["clean_acc", "pgd_linf"])]))
    assert tex_to_text(TeX(r"PGD-$\ell_\infty$ ($-$1)")) == "PGD-ℓ∞ (−1)"
    with pytest.raises(ValueError, match="TEX_TEXT"):
        tex_to_text(TeX(r"$\alpha$"))
