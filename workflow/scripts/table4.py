"""The paper's Table 4: clean and corruption accuracy of vanilla and AT models (rule table4)."""

from robustarch.report.jobs import write_table4
from robustarch.workflow import setup_job

write_table4(models=snakemake.params.models, clean=snakemake.input.clean,
             corruptions=snakemake.input.corruptions, datasets=snakemake.params.datasets,
             tex=snakemake.output.tex, csv=snakemake.output.csv, html=snakemake.output.html,
             per_corruption=snakemake.output.per_corruption, log=setup_job(snakemake))
