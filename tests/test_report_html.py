"""`snakemake --report report.html` after a tiny run of the whole DAG on the bundled digits: one
self-contained HTML file with every table, figure, training curve, the scorecard and the
configuration of the run in it.

Snakemake 9's HTML report is a single page whose results live in one script element,
``var results = {...};``: a JSON object keyed by each result's path, whose ``data_uri`` holds
the file itself (``data:<mime>;charset=...;filename=...;base64,<bytes>``), beside
``var categories = {...}`` (category → subcategory → paths). The test reads both back.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from test_workflow import REPO, _run, _workdir, tiny_studies_run

from robustarch.data.registry import list_datasets

METHODS = ("vanilla", "pgd_linf")


def _config() -> dict:
    """The tiny run with every study and analysis on digits, so that rule all, the scorecard
    included, runs offline: ten tiny models of one epoch."""
    config = tiny_studies_run()
    study = {"dataset": "digits", "methods": ["pgd_linf"]}
    config["studies"].update(
        coatnet_layouts={**study, "architectures": ["coatnet", "coatnet-CCCC"]},
        activation={**study, "architectures": ["vit"]})
    config["analysis"]["sparsity"]["figure2"] = ["coatnet", "coatnet-CCCC"]
    return config


def _script(page: str, name: str):
    """The JSON assigned to ``var <name>`` in the report's ``<script id="<name>">``."""
    match = re.search(rf'<script id="{name}">\s*var \w+ = (.*?);\s*</script>', page, re.DOTALL)
    assert match, f"no {name} script in the report"
    return json.loads(match.group(1))


def _decode(data_uri: str) -> tuple[str, bytes]:
    header, _, payload = data_uri.partition(",")
    assert header.startswith("data:") and header.endswith(";base64"), header[:80]
    return header[len("data:"):].split(";")[0], base64.b64decode(payload)


def _outputs_outside_model_folders(results: Path) -> set[str]:
    """Every file of the run under results/ but those of single models
    (results/<dataset>/<arch>/<method>/…): its tables, figures, curves and configuration."""
    datasets = set(list_datasets())
    return {path.relative_to(results.parent).as_posix() for path in results.rglob("*")
            if path.is_file() and path.relative_to(results).parts[0] not in datasets}


@pytest.mark.slow
def test_report_holds_every_table_figure_the_scorecard_and_the_configuration(tmp_path):
    work = _workdir(tmp_path)
    shutil.copytree(REPO / "report", work / "report")
    (work / "tiny.yaml").write_text(yaml.safe_dump(_config()))
    args = ["--cores", "2", "--configfile", "tiny.yaml"]  # rule all: every output
    result = _run(args, work, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = _run([*args, "--report", "report.html"], work)
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]

    page = (work / "report.html").read_text()
    results = _script(page, "results")
    categories = _script(page, "categories")
    # every file of the run outside the model folders is in the report, and nothing else
    expected = _outputs_outside_model_folders(work / "results")
    assert set(results) == expected
    for path, entry in results.items():
        mime, data = _decode(entry["data_uri"])
        assert data == (work / path).read_bytes(), path
        assert entry["mime_type"] == mime
    # every table, readable in the page, and every figure, as a picture
    tables = sorted(p.stem for p in (work / "results").glob("*.tex")
                    if not p.stem.startswith("scorecard"))
    assert {"table1", "table1_strong", "table2", "table3", "table_activation", "table_trades",
            "table4", "table_analysis"} <= set(tables)
    for table in tables:
        assert results[f"results/{table}.html"]["mime_type"] == "text/html", table
        assert f"results/{table}.tex" in results
    figures = sorted((work / "results" / "figures").glob("*.pdf"))
    assert {p.stem for p in figures} == {"figure1_sparsity", "figure2_coatnet_components",
                                         "figure3_l1_penalty", "figure4_landscape",
                                         "sparsity_vs_worst_case"}
    for figure in figures:
        png = f"results/figures/{figure.stem}.png"
        assert _decode(results[png]["data_uri"])[0] == "image/png", png

    assert set(categories) == {"Tables", "Figures", "Training", "Configuration", "Scorecard"}
    tables = categories["Tables"]
    assert set(tables["Table 1"]) == {f"results/table1.{s}" for s in ("tex", "csv", "html")}
    assert set(tables["Strong protocol"]) == {f"results/table1_strong.{s}"
                                              for s in ("tex", "csv", "html")}
    assert tables["Architectures"] == ["results/architectures.csv"]
    assert set(categories["Figures"]["Figure 3: l1 penalty"]) == {
        f"results/figures/figure3_l1_penalty.{s}" for s in ("pdf", "png", "csv")}
    assert set(categories["Training"]["digits"]) >= {
        f"results/figures/training/digits/{m}.{s}"
        for m in METHODS for s in ("pdf", "png")}
    assert categories["Configuration"] == {"Other": ["results/config.yaml"]}
    scorecard = {path for paths in categories["Scorecard"].values() for path in paths}
    assert {"results/scorecard.md", "results/scorecard.csv"} <= scorecard
    card = _decode(results["results/scorecard.md"]["data_uri"])[1].decode()
    assert "Figure 2" in card and "Table 4" in card  # the studies' findings have verdicts

    # captions are rendered with the job's parameters; the tables are readable in the page
    assert "Table 1 (digits)" in results["results/table1.html"]["caption"]
    assert re.search(r"\d+ architectures",
                     results["results/figures/training/digits/pgd_linf.png"]["caption"])
    table = _decode(results["results/table1.html"]["data_uri"])[1].decode()
    assert "PGD-ℓ∞ adversarial training" in table and "<td>ResNet</td>" in table
    config = yaml.safe_load(_decode(results["results/config.yaml"]["data_uri"])[1])
    assert config["scale"] == "tiny" and config["run"]["architectures"] == ["resnet", "vit"]
    assert config["training"]["epochs"] == 1 and "landscape" in config["analysis"]
    assert "robustarch" in _script(page, "workflow-desc")
