"""Parameter counts of every configured architecture vs the paper (rule architectures_table)."""

from robustarch.report.jobs import write_architectures_table
from robustarch.workflow import setup_job

write_architectures_table(architectures=snakemake.params.architectures,
                          datasets=snakemake.params.datasets, scale=snakemake.params.scale,
                          csv=snakemake.output.csv, log=setup_job(snakemake))
