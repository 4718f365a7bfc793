"""Weight sparsity, loss landscape and local Lipschitz constant of one model (rule
analyse_model)."""

from robustarch.analysis.job import run_analysis_job
from robustarch.workflow import setup_job

run_analysis_job(model=snakemake.input.model, train=snakemake.input.train,
                 test=snakemake.input.test, settings=snakemake.params.settings,
                 keys=dict(snakemake.wildcards.items()),
                 sparsity_path=snakemake.output.sparsity,
                 landscape_path=snakemake.output.landscape,
                 lipschitz_path=snakemake.output.lipschitz, log=setup_job(snakemake))
