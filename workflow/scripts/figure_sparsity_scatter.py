"""Worst-case accuracy against weight sparsity over all analysed architectures, Spearman's rho
in the title (rule figure_sparsity_scatter; beyond the paper)."""

import pandas as pd

from robustarch.analysis.figures import sparsity_scatter
from robustarch.jobs import setup_job

log = setup_job(snakemake)
rho, p = sparsity_scatter(pd.read_csv(snakemake.input.table), snakemake.output.pdf)
log(f"Spearman rho {rho:.3f} (p = {p:.3g})")
