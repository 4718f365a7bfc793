"""Worst-case accuracy against weight sparsity over all analysed architectures, Spearman's rho
in the title (rule figure_sparsity_scatter; beyond the paper)."""

from robustarch.report.jobs import write_sparsity_scatter
from robustarch.workflow import setup_job

write_sparsity_scatter(table=snakemake.input.table, pdf=snakemake.output.pdf,
                       png=snakemake.output.png, log=setup_job(snakemake))
