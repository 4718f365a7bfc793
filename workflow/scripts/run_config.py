"""results/config.yaml: the validated configuration of the run (rule run_config)."""

from robustarch.report.jobs import write_run_config
from robustarch.workflow import setup_job

write_run_config(config=snakemake.params.config, yaml_path=snakemake.output.yaml,
                 log=setup_job(snakemake))
