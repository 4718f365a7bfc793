"""Figure 3: clean and worst-case accuracy against the l1 penalty strength
(rule figure3_l1_penalty)."""

from robustarch.report.jobs import write_figure3
from robustarch.workflow import setup_job

write_figure3(summaries=snakemake.input.summaries, strengths=snakemake.params.strengths,
              arch=snakemake.params.arch, pdf=snakemake.output.pdf, png=snakemake.output.png,
              csv=snakemake.output.csv, log=setup_job(snakemake))
