"""Training loss and accuracy per epoch of one dataset's models of one method, a panel per
architecture (rule training_curves)."""

from robustarch.report.jobs import write_training_curves
from robustarch.workflow import setup_job

write_training_curves(metrics=snakemake.input.metrics,
                      architectures=snakemake.params.architectures,
                      dataset=snakemake.wildcards.dataset, method=snakemake.wildcards.method,
                      pdf=snakemake.output.pdf, png=snakemake.output.png,
                      log=setup_job(snakemake))
