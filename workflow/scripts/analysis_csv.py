"""results/{sparsity,landscape,lipschitz}.csv from the per-model files (rule analysis_csv)."""

from robustarch.report.jobs import write_analysis_csv
from robustarch.workflow import setup_job

write_analysis_csv(kind=snakemake.wildcards.kind, files=snakemake.input.files,
                   csv=snakemake.output.csv, log=setup_job(snakemake))
