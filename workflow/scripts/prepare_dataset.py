"""Decode a dataset once into uint8 tensor splits (rule prepare_dataset)."""

from robustarch.data.jobs import run_prepare_dataset_job
from robustarch.workflow import setup_job

run_prepare_dataset_job(dataset=snakemake.wildcards.dataset,
                        archive=snakemake.input.get("archive"), train=snakemake.output.train,
                        test=snakemake.output.test, log=setup_job(snakemake))
