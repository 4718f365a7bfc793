"""One corruption of one dataset's test split, all configured severities (rule
prepare_corruption): decoded from the published archive, or generated."""

from robustarch.data.jobs import run_prepare_corruption_job
from robustarch.workflow import setup_job

run_prepare_corruption_job(dataset=snakemake.wildcards.dataset,
                           corruption=snakemake.wildcards.corruption,
                           archive=snakemake.input.get("archive"),
                           test=snakemake.input.get("test"),
                           severities=snakemake.params.severities, seed=snakemake.params.seed,
                           num_samples=snakemake.params.num_samples,
                           output=snakemake.output.corruption, log=setup_job(snakemake))
