"""One study table in the paper's layout (rule study_table): Table 2 (CoAtNet stage layouts),
Table 3 (patch size), the activation table and the TRADES table."""

import json
from pathlib import Path

from robustarch.jobs import setup_job
from robustarch.report import (
    activation_rows,
    study_frame,
    table2_rows,
    table3_rows,
    trades_rows,
    with_paper_study_numbers,
    write_table,
)

log = setup_job(snakemake)
spec = snakemake.params.spec
study, dataset, archs = spec["study"], spec["dataset"], spec["architectures"]
summaries = [json.loads(Path(path).read_text()) for path in snakemake.input.summaries]

# study -> (rows, AT method, published table and its join keys, caption)
layouts = {
    "coatnet_layouts": (table2_rows, "pgd_linf", ("table2_coatnet_stages",
                                                  ["architecture", "stages"]),
                        "Table 2: CoAtNet stage layouts (C: MBConv, T: transformer)"),
    "patch_size": (table3_rows, "pgd_linf", ("table3_patch_size",
                                             ["architecture", "patch_size"]),
                   "Table 3: patch size"),
    "activation": (activation_rows, "pgd_linf", None, "GELU vs ReLU"),
    "trades": (trades_rows, "trades", None, "TRADES adversarial training"),
}
make_rows, at_method, paper, caption = layouts[study]
frame = study_frame(summaries, make_rows(archs), at_method=at_method)
csv_frame = frame
if paper is not None and dataset == "cifar10":  # the paper's numbers are for CIFAR-10
    csv_frame = with_paper_study_numbers(frame, *paper)
write_table(frame, snakemake.output.tex, snakemake.output.csv, csv_frame=csv_frame,
            caption=f"{caption} ({dataset}): accuracy (%)")
log(frame.to_string())
