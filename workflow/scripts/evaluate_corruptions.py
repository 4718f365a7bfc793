"""Accuracy of one model under every configured corruption and severity, one row per test
sample (rule evaluate_corruptions); resumes per corruption from its state folder."""

from robustarch.evaluate.jobs import run_corruption_job
from robustarch.workflow import setup_job

run_corruption_job(model=snakemake.input.model, corruption_files=snakemake.input.corruptions,
                   corruptions=snakemake.params.corruptions,
                   severities=snakemake.params.severities,
                   evaluation=snakemake.params.evaluation, outcomes=snakemake.output.outcomes,
                   state_dir=snakemake.params.state_dir, log=setup_job(snakemake))
