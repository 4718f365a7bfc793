"""One study table in the paper's layout (rule study_table): Table 2 (CoAtNet stage layouts),
Table 3 (patch size), the activation table and the TRADES table."""

from robustarch.report.jobs import write_study_table
from robustarch.workflow import setup_job

spec = snakemake.params.spec
write_study_table(study=spec["study"], dataset=spec["dataset"],
                  architectures=spec["architectures"], summaries=snakemake.input.summaries,
                  tex=snakemake.output.tex, csv=snakemake.output.csv, html=snakemake.output.html,
                  log=setup_job(snakemake))
