"""Every table in the paper's layout, written by the report jobs' own functions from constructed
summaries: grouped headers, rules between categories, rows ranked as the paper ranks them, an
HTML page that says the same, and a .tex that compiles with pdflatex inside a document loading
booktabs and amsmath (skipped where pdflatex is not installed: Debian's
texlive-latex-recommended provides it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from robustarch.report import jobs

# (category, paper-protocol worst case): the order within each category is by worst case,
# highest first, whatever the paper's Table 1 order (vit, swin; pvtv2, coatnet; vgg, resnet).
ARCHS = {"vit": ("Transformer", 0.24), "swin": ("Transformer", 0.28),
         "pvtv2": ("Hybrid", 0.33), "coatnet": ("Hybrid", 0.31),
         "vgg": ("CNN", 0.18), "resnet": ("CNN", 0.21)}
DATASET = "digits"


def _summary(arch, method, clean, worst):
    """A summary.json: paper attacks a little above the worst case, strong ones below it."""
    accuracy = {"clean": clean}
    if worst is not None:
        accuracy |= {"pgd_linf": worst + 0.08, "aa_linf": worst + 0.03, "pgd_l2": worst + 0.05,
                     "pgd_l1": worst + 0.01, "pgd_linf_es": worst + 0.02,
                     "pgd_l1_sparse": worst - 0.05}
    return {"dataset": DATASET, "arch": arch, "method": method, "n": 100, "accuracy": accuracy,
            "worst_case": worst, "worst_case_all": None if worst is None else worst - 0.06,
            "worst_case_attacks": []}


def _write_json(directory: Path, summaries) -> list[Path]:
    paths = []
    for s in summaries:
        path = directory / f"{s['arch']}_{s['method']}.json"
        path.write_text(json.dumps(s))
        paths.append(path)
    return paths


def _log(message: str) -> None:
    pass


def _table1_inputs(tmp: Path) -> tuple[list[Path], Path]:
    summaries = [_summary(a, "vanilla", 0.9, None) for a in ARCHS]
    summaries += [_summary(a, "pgd_linf", 0.7, w) for a, (_, w) in ARCHS.items() if a != "vgg"]
    architectures = tmp / "architectures.csv"
    pd.DataFrame([{"name": a, "category": c, "dataset": DATASET, "image_size": 32,
                   "params_m": 1.5} for a, (c, _) in ARCHS.items()]).to_csv(architectures,
                                                                            index=False)
    (tmp / "summaries").mkdir()
    return _write_json(tmp / "summaries", summaries), architectures


def _study_summaries(tmp: Path) -> list[Path]:
    worst = {"coatnet": 0.30, "coatnet-CCCC": 0.34, "coatnet-CTTC": 0.22,
             "pvtv2": 0.33, "pvtv2-p2": 0.31, "vit-p8": 0.26, "vit": 0.24, "vit-p2": 0.20,
             "vit-relu": 0.21, "swin-relu": 0.19, "swin": 0.28}
    summaries = [_summary(a, "pgd_linf", 0.7, w) for a, w in worst.items()]
    summaries += [_summary(a, "vanilla", 0.9, None) for a in worst]
    summaries += [_summary(a, "trades", 0.6, w) for a, w in
                  [("resnet", 0.25), ("vgg", 0.27), ("vit", 0.23)]]
    (tmp / "studies").mkdir()
    return _write_json(tmp / "studies", summaries)


def _table4_inputs(tmp: Path):
    (tmp / "eval").mkdir()
    models, clean, corrupted = [], [], []
    for arch, correct in [("resnet", [1, 1, 0, 1]), ("vit", [1, 0, 0, 1]), ("pvtv2", [1] * 4)]:
        for method in ("vanilla", "pgd_linf"):
            for dataset in ("cifar10", "imagenette"):
                stem = tmp / "eval" / f"{dataset}_{arch}_{method}"
                pd.DataFrame({"index": range(4), "label": 0, "prediction": 0,
                              "correct": [bool(c) for c in correct]}).to_parquet(
                    f"{stem}_clean.parquet")
                pd.DataFrame({"corruption": ["fog"] * 4, "severity": [1, 1, 5, 5],
                              "index": [0, 1, 0, 1], "label": 0, "prediction": 0,
                              "correct": [True, False, False, bool(correct[0])]}).to_parquet(
                    f"{stem}_corruptions.parquet")
                models.append((dataset, arch, method))
                clean.append(f"{stem}_clean.parquet")
                corrupted.append(f"{stem}_corruptions.parquet")
    return models, clean, corrupted


def _analysis_inputs(tmp: Path):
    models = [("vit", "pgd_linf"), ("coatnet", "pgd_linf"), ("resnet", "pgd_linf"),
              ("vit", "vanilla")]
    keys = [{"dataset": DATASET, "arch": a, "method": m} for a, m in models]
    sparsity = pd.DataFrame([{**k, "component": "all", "weights": 10, "max_abs": 1.0,
                              "sparse": 2, "sparsity": 0.2 + 0.1 * i,
                              "sparsity_trained": 0.2 + 0.1 * i} for i, k in enumerate(keys)])
    landscape = pd.DataFrame([{**k, "sharpness": 1.5 + i} for i, k in enumerate(keys)])
    lipschitz = pd.DataFrame([{**k, "lipschitz": 10.0 * (i + 1)} for i, k in enumerate(keys)])
    paths = {}
    for name, frame in (("sparsity", sparsity), ("landscape", landscape),
                        ("lipschitz", lipschitz)):
        paths[name] = tmp / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    (tmp / "analysis").mkdir()
    summaries = _write_json(tmp / "analysis", [_summary(a, m, 0.7, 0.2 if m != "vanilla" else 0.0)
                                               for a, m in models])
    return models, paths, summaries


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, Path]:
    """Each table kind, written by its job function: name -> .tex path (.html, .csv beside)."""
    tmp = tmp_path_factory.mktemp("tables")
    out = {}

    def paths(name):
        out[name] = tmp / f"{name}.tex"
        return {"tex": out[name], "csv": tmp / f"{name}.csv", "html": tmp / f"{name}.html"}

    summaries, architectures = _table1_inputs(tmp)
    jobs.write_table1(summaries=summaries, architectures=architectures, dataset=DATASET,
                      log=_log, **paths("table1"))
    jobs.write_table1_strong(summaries=summaries, architectures=architectures, dataset=DATASET,
                             strong_attacks=["pgd_linf_es", "pgd_l1_sparse"],
                             counterparts={"pgd_linf_es": "pgd_linf", "pgd_l1_sparse": "pgd_l1"},
                             log=_log, **paths("table1_strong"))
    studies = _study_summaries(tmp)
    for name, study, archs in [
            ("table2", "coatnet_layouts", ["coatnet", "coatnet-CTTC", "coatnet-CCCC"]),
            ("table3", "patch_size", ["pvtv2", "pvtv2-p2", "vit-p8", "vit", "vit-p2"]),
            ("table_activation", "activation", ["vit", "swin"]),
            ("table_trades", "trades", ["vit", "resnet", "vgg"])]:
        jobs.write_study_table(study=study, dataset=DATASET, architectures=archs,
                               summaries=studies, log=_log, **paths(name))
    models, clean, corrupted = _table4_inputs(tmp)
    jobs.write_table4(models=models, clean=clean, corruptions=corrupted,
                      datasets=["cifar10", "imagenette"], per_corruption=tmp / "per.csv",
                      log=_log, **paths("table4"))
    analysed, analysis_paths, analysis_summaries = _analysis_inputs(tmp)
    jobs.write_table_analysis(models=analysed, summaries=analysis_summaries,
                              categories={a: ARCHS[a][0] for a, _ in analysed},
                              dataset=DATASET, log=_log, **analysis_paths,
                              **paths("table_analysis"))
    return out


def _body(tex: str) -> list[str]:
    """The table's rows (``\\midrule`` kept, headers and rules around them dropped)."""
    lines = tex.splitlines()
    start = lines.index(r"\midrule")
    return lines[start:lines.index(r"\bottomrule")]


def _first_cells(tex: str, column: int = 0) -> list[str]:
    return [line.split(" & ")[column].strip() for line in _body(tex) if line != r"\midrule"]


def test_table1_groups_headers_and_ranks_rows_by_worst_case_within_categories(tables):
    tex = tables["table1"].read_text()
    assert r"\multicolumn{1}{c}{Vanilla} & \multicolumn{6}{c}{PGD-$\ell_\infty$ adversarial " \
           r"training} \\" in tex
    assert r"\cmidrule(lr){4-4} \cmidrule(lr){5-10}" in tex
    assert ("Category & Architecture & Params (M) & Clean & Clean & PGD-$\\ell_\\infty$ & "
            "AA-$\\ell_\\infty$ & PGD-$\\ell_2$ & PGD-$\\ell_1$ & Worst case \\\\") in tex
    body = _body(tex)
    assert [line.split(" & ")[:2] for line in body if line != r"\midrule"] == [
        ["Transformer", "Swin Transformer"], ["", "ViT"], ["Hybrid", "PVTv2"], ["", "CoAtNet"],
        ["CNN", "ResNet"], ["", "VGG"]]  # VGG has no AT model: missing, so last
    assert body.count(r"\midrule") == 3  # one after the headers, one between categories
    assert "& -- & -- & -- & -- & -- & --" in body[-1]
    assert "28.00" in tex and "90.00" in tex
    csv = pd.read_csv(tables["table1"].with_suffix(".csv"))
    assert csv["architecture"].tolist() == ["Swin Transformer", "ViT", "PVTv2", "CoAtNet",
                                            "ResNet", "VGG"]
    assert "category" in csv.columns and csv.columns[0] == "architecture"


def test_strong_table_groups_ranks_and_the_rho_rows(tables):
    tex = tables["table1_strong"].read_text()
    assert (r"\multicolumn{3}{c}{strong protocol} & \multicolumn{1}{c}{paper protocol} & "
            r"\multicolumn{2}{c}{ranks}") in tex
    assert "PGD-$\\ell_\\infty$ (ES) & PGD-$\\ell_1$ (sparse) & Worst case (all) & Worst case & " \
           "Paper & Strong" in tex
    rows = [line.split(" & ") for line in _body(tex) if line != r"\midrule"]
    assert [r[1] for r in rows] == ["Swin Transformer", "ViT", "PVTv2", "CoAtNet", "ResNet",
                                    r"Spearman $\rho$ vs paper", r"Spearman $p$ vs paper"]
    assert [r[-2] for r in rows[:5]] == ["3", "4", "1", "2", "5"]  # ranks: integers
    assert rows[5][-1].startswith("--") and "1.00" in rows[5][5]
    assert _body(tex).count(r"\midrule") == 4  # below the headers, before Hybrid, CNN, rho


def test_study_tables_layouts(tables):
    table2 = tables["table2"].read_text()
    assert _first_cells(table2) == ["CCCC", "CCTT", "CTTC"]  # by worst case, highest first
    assert r"\multicolumn{1}{c}{Vanilla}" in table2 and "Stage layout" in table2
    table3 = tables["table3"].read_text()
    assert [line.split(" & ")[:2] for line in _body(table3) if line != r"\midrule"] == [
        ["PVTv2", "4"], ["", "2"], ["ViT", "8"], ["", "4"], ["", "2"]]
    assert _body(table3).count(r"\midrule") == 2
    activation = tables["table_activation"].read_text()
    assert [line.split(" & ")[:2] for line in _body(activation) if line != r"\midrule"] == [
        ["ViT", "GELU"], ["", "ReLU"], ["Swin Transformer", "GELU"], ["", "ReLU"]]
    trades = tables["table_trades"].read_text()
    assert r"\multicolumn{6}{c}{TRADES adversarial training}" in trades
    assert "Vanilla" not in trades  # TRADES models only
    assert [line.split(" & ")[:2] for line in _body(trades) if line != r"\midrule"] == [
        ["Transformer", "ViT"], ["CNN", "VGG"], ["", "ResNet"]]


def test_table4_dataset_groups_and_categories(tables):
    tex = tables["table4"].read_text()
    assert r" &  & \multicolumn{4}{c}{CIFAR-10} & \multicolumn{4}{c}{ImageNette} \\" in tex
    assert r"\cmidrule(lr){3-6} \cmidrule(lr){7-10}" in tex
    assert "Vanilla & Vanilla-C & AT Clean & AT-C & Vanilla & Vanilla-C" in tex
    assert [line.split(" & ")[:2] for line in _body(tex) if line != r"\midrule"] == [
        ["Transformer", "ViT"], ["Hybrid", "PVTv2"], ["CNN", "ResNet"]]  # the paper's order
    csv = pd.read_csv(tables["table4"].with_suffix(".csv"))
    assert "category" not in csv.columns and "paper_cifar10_at_c_acc" in csv.columns


def test_analysis_table_sections_and_method_names(tables):
    tex = tables["table_analysis"].read_text()
    assert "Method" in tex and "PGD-$\\ell_\\infty$" in tex and "Sparsity (\\%)" in tex
    assert [line.split(" & ")[:3] for line in _body(tex) if line != r"\midrule"] == [
        ["Transformer", "ViT", "PGD-$\\ell_\\infty$"], ["Hybrid", "CoAtNet", "PGD-$\\ell_\\infty$"],
        ["CNN", "ResNet", "PGD-$\\ell_\\infty$"], ["Transformer", "ViT", "Vanilla"]]


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.headers, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = tag

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell == "td":
            self.rows[-1].append(data)
        elif self._cell == "th":
            self.headers.append(data)


@pytest.mark.parametrize("name", ["table1", "table1_strong", "table2", "table3",
                                  "table_activation", "table_trades", "table4", "table_analysis"])
def test_html_page_shows_the_same_table(tables, name):
    tex = tables[name].read_text()
    parser = _Cells()
    parser.feed(tables[name].with_suffix(".html").read_text())
    rows = [r for r in parser.rows if r]
    body = [line for line in _body(tex) if line != r"\midrule"]
    assert len(rows) == len(body)
    assert not any("\\" in h or "$" in h for h in parser.headers)  # no LaTeX left in the page
    numbers = re.findall(r"\d+\.\d\d", " ".join(body))
    assert numbers == re.findall(r"\d+\.\d\d", " ".join(" ".join(r) for r in rows))


PDFLATEX = shutil.which("pdflatex")


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (Debian: apt-get "
                                             "install texlive-latex-recommended)")
@pytest.mark.parametrize("name", ["table1", "table1_strong", "table2", "table3",
                                  "table_activation", "table_trades", "table4", "table_analysis"])
def test_table_compiles_with_pdflatex(tables, name, tmp_path):
    shutil.copy(tables[name], tmp_path / "table.tex")
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs,amsmath}\n"
        "\\begin{document}\n\\input{table.tex}\n\\end{document}\n")
    result = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "doc.pdf").read_bytes().startswith(b"%PDF")
