"""Figure 3: clean and worst-case accuracy against the l1 penalty strength
(rule figure3_l1_penalty)."""

import json
import os
from pathlib import Path

from robustarch.jobs import setup_job
from robustarch.report import l1_penalty_frame, plot_l1_penalty

log = setup_job(snakemake)
summaries = [json.loads(Path(path).read_text()) for path in snakemake.input.summaries]
frame = l1_penalty_frame(summaries, snakemake.params.strengths, snakemake.params.arch)
plot_l1_penalty(frame, snakemake.output.pdf, arch=snakemake.params.arch)
csv = Path(snakemake.output.csv)
tmp = csv.with_name(f".{csv.name}.tmp")
frame.to_csv(tmp, index=False)
os.replace(tmp, csv)
log(frame.to_string())
