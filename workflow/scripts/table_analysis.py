"""results/table_analysis.tex: sparsity, sharpness, Lipschitz and worst case side by side
(rule table_analysis)."""

from robustarch.report.jobs import write_table_analysis
from robustarch.workflow import setup_job

write_table_analysis(models=snakemake.params.models, sparsity=snakemake.input.sparsity,
                     landscape=snakemake.input.landscape, lipschitz=snakemake.input.lipschitz,
                     summaries=snakemake.input.summaries,
                     categories=snakemake.params.categories, dataset=snakemake.params.dataset,
                     tex=snakemake.output.tex, csv=snakemake.output.csv, html=snakemake.output.html,
                     log=setup_job(snakemake))
