"""Paper Figure 4: weight loss landscape contours (rule figure4_landscape)."""

from robustarch.report.jobs import write_figure4
from robustarch.workflow import setup_job

write_figure4(landscapes=snakemake.input.landscapes,
              architectures=snakemake.params.architectures, methods=snakemake.params.methods,
              pdf=snakemake.output.pdf, png=snakemake.output.png, log=setup_job(snakemake))
