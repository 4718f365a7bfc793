"""Parameter counts of every configured architecture vs the paper (rule architectures_table)."""

from robustarch.architectures import architecture_table
from robustarch.jobs import setup_job

log = setup_job(snakemake)
table = architecture_table(snakemake.params.architectures, snakemake.params.datasets,
                           snakemake.params.scale)
table.to_csv(snakemake.output.csv, index=False)
log(table.to_string())
