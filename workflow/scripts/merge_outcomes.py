"""Per-attack accuracy and the sample-wise worst case of one model (rule merge_outcomes)."""

from robustarch.evaluate.merge import run_merge_job
from robustarch.workflow import setup_job

run_merge_job(outcome_files=dict(snakemake.input.items()),
              worst_case=snakemake.params.worst_case, model=dict(snakemake.wildcards.items()),
              summary=snakemake.output.summary, log=setup_job(snakemake))
