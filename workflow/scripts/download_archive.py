"""Download one dataset archive and verify its md5 (rule download_archive)."""

from robustarch.data.download import download
from robustarch.jobs import setup_job

log = setup_job(snakemake)
log(f"downloading {snakemake.params.url}")
download(snakemake.params.url, snakemake.output.archive, snakemake.params.md5)
log(f"verified {snakemake.output.archive}")
