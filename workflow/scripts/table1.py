"""The paper's Table 1 for one dataset (rule table1)."""

from robustarch.report.jobs import write_table1
from robustarch.workflow import setup_job

write_table1(summaries=snakemake.input.summaries, architectures=snakemake.input.architectures,
             dataset=snakemake.params.dataset, tex=snakemake.output.tex,
             csv=snakemake.output.csv, html=snakemake.output.html,
             log=setup_job(snakemake))
