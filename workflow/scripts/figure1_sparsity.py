"""Paper Figure 1: weight histograms with the sparsity ratio (rule figure1_sparsity)."""

from robustarch.report.jobs import write_figure1
from robustarch.workflow import setup_job

write_figure1(reports=snakemake.input.reports, pdf=snakemake.output.pdf, png=snakemake.output.png,
              log=setup_job(snakemake))
