"""Train one (dataset, architecture, method) model (rule train)."""

from robustarch.train.job import run_training_job
from robustarch.workflow import setup_job

run_training_job(train=snakemake.input.train, test=snakemake.input.test,
                 settings=snakemake.params.settings, model_path=snakemake.output.model,
                 metrics_path=snakemake.output.metrics,
                 checkpoint_dir=snakemake.params.checkpoint_dir, log=setup_job(snakemake))
