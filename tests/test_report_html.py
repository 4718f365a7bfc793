"""`snakemake --report report.html` after a tiny run on the bundled digits: one self-contained
HTML file with every table, figure, training curve and the configuration of the run in it.

Snakemake 9's HTML report is a single page whose results live in one script element,
``var results = {...};``: a JSON object keyed by each result's path, whose ``data_uri`` holds
the file itself (``data:<mime>;charset=...;filename=...;base64,<bytes>``), beside
``var categories = {...}`` (category → subcategory → paths). The test reads both back.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from test_workflow import REPO, TINY_RUN, _run, _workdir

from robustarch.data.registry import list_datasets

# Table 1, the strong table, Figure 3 (of lambda = 0 alone: no model beyond Table 1's), the
# training curves of every (dataset, method) trained, the architectures table and the
# configuration.
METHODS = ("vanilla", "pgd_linf")
TARGETS = ["results/table1.tex", "results/table1_strong.tex", "results/architectures.csv",
           "results/figures/figure3_l1_penalty.pdf", "results/config.yaml",
           *[f"results/figures/training/digits/{m}.pdf" for m in METHODS]]


def _config() -> dict:
    config = copy.deepcopy(TINY_RUN)
    config["studies"] = {"l1_penalty": {"dataset": "digits", "architecture": "resnet",
                                        "lambdas": [0]}}
    # the analysis figures' models (config.yaml's lists) are models of the run too: none here
    config["analysis"] = {"sparsity": {"figure1": [], "figure2": []},
                          "landscape": {"figure4": []}}
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
def test_report_holds_every_table_figure_and_the_configuration(tmp_path):
    work = _workdir(tmp_path)
    shutil.copytree(REPO / "report", work / "report")
    (work / "tiny.yaml").write_text(yaml.safe_dump(_config()))
    args = [*TARGETS, "--cores", "2", "--configfile", "tiny.yaml"]
    result = _run(args, work, timeout=900)
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
    assert results["results/table1.html"]["mime_type"] == "text/html"
    assert _decode(results["results/figures/figure3_l1_penalty.png"]["data_uri"])[0] == (
        "image/png")

    tables = categories["Tables"]
    assert set(tables["Table 1"]) == {f"results/table1.{s}" for s in ("tex", "csv", "html")}
    assert set(tables["Strong protocol"]) == {f"results/table1_strong.{s}"
                                              for s in ("tex", "csv", "html")}
    assert tables["Architectures"] == ["results/architectures.csv"]
    assert set(categories["Figures"]["Figure 3: l1 penalty"]) == {
        f"results/figures/figure3_l1_penalty.{s}" for s in ("pdf", "png", "csv")}
    assert set(categories["Training"]["digits"]) == {
        f"results/figures/training/digits/{m}.{s}"
        for m in METHODS for s in ("pdf", "png")}
    assert categories["Configuration"] == {"Other": ["results/config.yaml"]}
    # the scorecard, where the run builds it, is one more category
    assert set(categories) - {"Scorecard"} == {"Tables", "Figures", "Training", "Configuration"}

    # captions are rendered with the job's parameters; the tables are readable in the page
    assert "Table 1 (digits)" in results["results/table1.html"]["caption"]
    assert "2 architectures" in results["results/figures/training/digits/pgd_linf.png"][
        "caption"]
    table = _decode(results["results/table1.html"]["data_uri"])[1].decode()
    assert "PGD-ℓ∞ adversarial training" in table and "<td>ResNet</td>" in table
    config = yaml.safe_load(_decode(results["results/config.yaml"]["data_uri"])[1])
    assert config["scale"] == "tiny" and config["run"]["architectures"] == ["resnet", "vit"]
    assert config["training"]["epochs"] == 1 and "landscape" in config["analysis"]
    assert "robustarch" in _script(page, "workflow-desc")
