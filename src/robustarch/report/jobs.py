"""The report jobs: each reads the per-model files of the earlier stages and writes one table
or figure (rules of rules/report.smk, rules/corruptions.smk and rules/analyse.smk)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import write_csv, write_text
from . import analysis_tables, figures
from .latex import write_table

Log = Callable[[str], None]


def read_json_files(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    return [json.loads(Path(path).read_text()) for path in paths]


def write_architectures_table(*, architectures: Sequence[str],
                              datasets: Mapping[str, Mapping[str, int]], scale: str,
                              csv: str | Path, log: Log) -> None:
    """Parameters of every configured architecture against the paper's count."""
    from .architectures import architecture_table

    table = architecture_table(architectures, datasets, scale)
    write_csv(table, csv)
    log(table.to_string())


def write_table1(*, summaries: Iterable[str | Path], architectures: str | Path, dataset: str,
                 tex: str | Path, csv: str | Path, html: str | Path, log: Log) -> None:
    """Table 1 of ``dataset``; its CSV carries the paper's numbers beside ours."""
    from .paper import with_paper_numbers
    from .table1 import TABLE1_LAYOUT, table1_frame

    frame = table1_frame(read_json_files(summaries), pd.read_csv(architectures), dataset)
    write_table(frame, tex, csv, csv_frame=with_paper_numbers(frame, dataset),
                caption=f"Table 1 ({dataset}): accuracy (%) of vanilla and PGD-Linf trained "
                        "models; within each category by worst-case accuracy",
                layout=TABLE1_LAYOUT, html_path=html)
    log(frame.to_string())


def write_table1_strong(*, summaries: Iterable[str | Path], architectures: str | Path,
                        dataset: str, strong_attacks: Sequence[str],
                        counterparts: Mapping[str, str], tex: str | Path, csv: str | Path,
                        html: str | Path, log: Log) -> None:
    """The two protocols side by side for ``dataset``; the ρ rows close both files."""
    from .strong import pairs_caption, strong_frame, strong_layout

    frame, rho = strong_frame(read_json_files(summaries), pd.read_csv(architectures), dataset,
                              strong_attacks=strong_attacks, counterparts=counterparts)
    both = pd.concat([frame, rho], ignore_index=True)
    write_table(both, tex, csv,
                caption=f"Table 1, strong protocol ({dataset}): accuracy (%) of PGD-Linf "
                        "trained models under the strong attacks, worst case over every "
                        "attack, ranks by either worst case (rows in Table 1's order); "
                        f"Spearman rho pairs: {pairs_caption(counterparts)}",
                layout=strong_layout(strong_attacks), html_path=html)
    log(both.to_string())


def write_study_table(*, study: str, dataset: str, architectures: Sequence[str],
                      summaries: Iterable[str | Path], tex: str | Path, csv: str | Path,
                      html: str | Path, log: Log) -> None:
    """One study's table (Table 2, Table 3, the activation and the TRADES tables)."""
    from .studies import study_table

    frame, csv_frame, caption, layout = study_table(study, dataset, architectures,
                                                    read_json_files(summaries))
    write_table(frame, tex, csv, csv_frame=csv_frame, caption=caption, layout=layout,
                html_path=html)
    log(frame.to_string())


def write_figure3(*, summaries: Iterable[str | Path], strengths: Sequence[float], arch: str,
                  pdf: str | Path, png: str | Path, csv: str | Path, log: Log) -> None:
    """Figure 3 (clean and worst-case accuracy against the ℓ1 strength) and its data."""
    frame = figures.l1_penalty_frame(read_json_files(summaries), strengths, arch)
    figures.figure3(frame, pdf, arch=arch, png=png)
    write_csv(frame, csv)
    log(frame.to_string())


def write_table4(*, models: Sequence[Sequence[str]], clean: Sequence[str | Path],
                 corruptions: Sequence[str | Path], datasets: Sequence[str], tex: str | Path,
                 csv: str | Path, html: str | Path, per_corruption: str | Path,
                 log: Log) -> None:
    """Table 4 (clean and corruption accuracy) and the per-corruption accuracies."""
    from .paper import with_paper_table4
    from .table4 import collect_table4, table4_display, table4_frame, table4_table

    results, per_corruption_frame = collect_table4(models, clean, corruptions)
    frame = table4_frame(results, datasets)
    shown, layout = table4_table(frame, datasets)
    write_table(shown, tex, csv, csv_frame=with_paper_table4(frame),
                caption="Table 4: clean and common-corruption accuracy (%) of vanilla and "
                        "PGD-Linf trained models (corruption accuracy: mean over corruptions "
                        "and severities)", layout=layout, html_path=html)
    write_csv(per_corruption_frame, per_corruption)
    log(table4_display(frame).to_string())


ANALYSIS_FRAMES = {"sparsity": analysis_tables.sparsity_frame,
                   "landscape": analysis_tables.landscape_frame,
                   "lipschitz": analysis_tables.lipschitz_frame}


def write_analysis_csv(*, kind: str, files: Iterable[str | Path], csv: str | Path,
                       log: Log) -> None:
    """``results/{sparsity,landscape,lipschitz}.csv`` from the per-model files."""
    frame = ANALYSIS_FRAMES[kind](files)
    write_csv(frame, csv)
    log(frame.to_string())


def write_table_analysis(*, models: Sequence[Sequence[str]], sparsity: str | Path,
                         landscape: str | Path, lipschitz: str | Path,
                         summaries: Iterable[str | Path], categories: Mapping[str, str],
                         dataset: str, tex: str | Path, csv: str | Path, html: str | Path,
                         log: Log) -> None:
    """Sparsity, sharpness, Lipschitz constant and worst case side by side."""
    frame = analysis_tables.analysis_frame(
        [tuple(model) for model in models], sparsity=pd.read_csv(sparsity),
        landscape=pd.read_csv(landscape), lipschitz=pd.read_csv(lipschitz),
        summaries=read_json_files(summaries), categories=categories, dataset=dataset)
    analysis_tables.write_analysis_table(
        frame, tex, csv,
        caption=f"Analysis ({dataset}): weight sparsity (% of all weights), loss-landscape "
                "sharpness, local Lipschitz constant and worst-case accuracy (%)",
        html_path=html)
    log(frame.to_string())


def write_figure1(*, reports: Iterable[str | Path], pdf: str | Path, png: str | Path,
                  log: Log) -> None:
    figures.figure1(read_json_files(reports), pdf, png)
    log(f"wrote {pdf}, {png}")


def write_figure2(*, reports: Iterable[str | Path], pdf: str | Path, png: str | Path,
                  log: Log) -> None:
    figures.figure2(read_json_files(reports), pdf, png)
    log(f"wrote {pdf}, {png}")


def write_figure4(*, landscapes: Iterable[str | Path], architectures: Sequence[str],
                  methods: Sequence[str], pdf: str | Path, png: str | Path, log: Log) -> None:
    from ..analysis.landscape_file import load_landscape

    data = {}
    for path in landscapes:
        landscape = load_landscape(path)
        data[(landscape["arch"], landscape["method"])] = landscape
    figures.figure4(data, architectures, methods, pdf, png)
    log(f"wrote {pdf}, {png}")


def write_sparsity_scatter(*, table: str | Path, pdf: str | Path, png: str | Path,
                           log: Log) -> None:
    rho, p = figures.sparsity_scatter(pd.read_csv(table), pdf, png)
    log(f"Spearman rho {rho:.3f} (p = {p:.3g})")


def write_scorecard(*, summaries: Iterable[str | Path], outcomes: Iterable[str | Path],
                    corruptions: Iterable[str | Path], sparsity: str | Path | None,
                    landscape: str | Path | None, spec: Mapping[str, Any], md: str | Path,
                    csv: str | Path, tex: str | Path, log: Log) -> None:
    """The reproduction scorecard: every reproduced cell against the paper's, the rank
    correlations, and the paper's findings as checks under both protocols
    (:mod:`robustarch.report.scorecard`)."""
    from ..atomic import write_text
    from .scorecard import (
        Results,
        build_scorecard,
        scorecard_frame,
        summary_text,
        to_latex,
        to_markdown,
    )

    results = Results(summaries=read_json_files(summaries), outcomes=outcomes,
                      corruptions=corruptions, attack_norms=spec["attack_norms"])
    card = build_scorecard(
        spec, results, sparsity=None if sparsity is None else pd.read_csv(sparsity),
        landscape=None if landscape is None else pd.read_csv(landscape))
    write_text(to_markdown(card), md)
    write_csv(scorecard_frame(card), csv)
    write_text(to_latex(card), tex)
    log(summary_text(card))


def write_training_curves(*, metrics: Sequence[str | Path], architectures: Sequence[str],
                          dataset: str, method: str, pdf: str | Path, png: str | Path,
                          log: Log) -> None:
    """The training curves of ``dataset``'s ``method`` models, one panel per architecture
    (``metrics``: their ``metrics.csv``, in the order of ``architectures``)."""
    if len(metrics) != len(architectures):
        raise ValueError(f"{len(metrics)} metrics files for {len(architectures)} architectures")
    frames = {arch: pd.read_csv(path) for arch, path in zip(architectures, metrics, strict=True)}
    figures.training_curves(frames, pdf, dataset=dataset, method=method, png=png)
    log(f"wrote {pdf}, {png} ({len(frames)} models)")


CONFIG_HEADER = ("# The validated configuration of this run: config.yaml, the profile's config "
                 "and any\n# --configfile/--config layered on it, every default of "
                 "workflow/schemas/config.schema.yaml filled in.\n")


def write_run_config(*, config: Mapping[str, Any], yaml_path: str | Path, log: Log) -> None:
    """The validated configuration of the run (every default filled in), as YAML."""
    import yaml

    text = yaml.safe_dump(_plain(config), sort_keys=False, default_flow_style=None, width=100)
    write_text(CONFIG_HEADER + text, yaml_path)
    log(f"wrote {yaml_path}")


def _plain(value: Any) -> Any:
    """``value`` as plain YAML types (Snakemake hands params over as its own containers)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
