"""Download one dataset archive and verify its md5 (rule download_archive)."""

from robustarch.data.jobs import run_download_job
from robustarch.workflow import setup_job

run_download_job(url=snakemake.params.url, md5=snakemake.params.md5,
                 archive=snakemake.output.archive, log=setup_job(snakemake))
