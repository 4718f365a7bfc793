"""The bill of the configured run: results/plan.csv and results/plan.md (rule plan)."""

from robustarch.workflow import setup_job
from robustarch.workflow.plan import write_plan

write_plan(jobs=snakemake.params.jobs, settings=snakemake.params.settings,
           slurm_profile=snakemake.params.slurm_profile, csv=snakemake.output.csv,
           md=snakemake.output.md, log=setup_job(snakemake))
