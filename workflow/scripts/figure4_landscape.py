"""Paper Figure 4: weight loss landscape contours (rule figure4_landscape)."""

from robustarch.analysis._io import load_landscape
from robustarch.analysis.figures import figure4
from robustarch.jobs import setup_job

log = setup_job(snakemake)
params = snakemake.params
landscapes = {}
for path in snakemake.input.landscapes:
    data = load_landscape(path)
    landscapes[(data["arch"], data["method"])] = data
figure4(landscapes, params.architectures, params.methods, snakemake.output.pdf)
log(f"wrote {snakemake.output.pdf}")
