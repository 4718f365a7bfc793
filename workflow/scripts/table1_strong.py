"""Table 1 under the strong protocol, beside the paper's (rule table1_strong)."""

from robustarch.report.jobs import write_table1_strong
from robustarch.workflow import setup_job

write_table1_strong(summaries=snakemake.input.summaries,
                    architectures=snakemake.input.architectures,
                    dataset=snakemake.params.dataset,
                    strong_attacks=snakemake.params.strong_attacks,
                    counterparts=snakemake.params.counterparts, tex=snakemake.output.tex,
                    csv=snakemake.output.csv, html=snakemake.output.html,
                    log=setup_job(snakemake))
