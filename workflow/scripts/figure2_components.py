"""Paper Figure 2: CoAtNet's weights by component (rule figure2_components)."""

from robustarch.report.jobs import write_figure2
from robustarch.workflow import setup_job

write_figure2(reports=snakemake.input.reports, pdf=snakemake.output.pdf, png=snakemake.output.png,
              log=setup_job(snakemake))
