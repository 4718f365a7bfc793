"""One corruption of one dataset's test split, all configured severities (rule
prepare_corruption): decoded from the published archive, or generated."""

from robustarch.data import load_split
from robustarch.data.corruptions import prepare_corruption
from robustarch.jobs import setup_job

log = setup_job(snakemake)
params, w = snakemake.params, snakemake.wildcards
archive = snakemake.input.get("archive")
test = None if archive else load_split(snakemake.input.test)
data = prepare_corruption(w.dataset, w.corruption, snakemake.output.corruption,
                          severities=params.severities, seed=params.seed, archive=archive,
                          test=test, num_samples=params.num_samples)
log(f"{w.dataset}-c {w.corruption}: {tuple(data['x'].shape)} images "
    f"({'decoded from ' + archive if archive else 'generated, seed ' + str(params.seed)})")
