"""Paper Figure 1: weight histograms with the sparsity ratio (rule figure1_sparsity)."""

import json
from pathlib import Path

from robustarch.analysis.figures import figure1
from robustarch.jobs import setup_job

log = setup_job(snakemake)
figure1([json.loads(Path(path).read_text()) for path in snakemake.input.reports],
        snakemake.output.pdf)
log(f"wrote {snakemake.output.pdf}")
