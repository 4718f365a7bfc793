"""results/{sparsity,landscape,lipschitz}.csv from the per-model files (rule analysis_csv)."""

from robustarch.analysis.tables import landscape_frame, lipschitz_frame, sparsity_frame, write_csv
from robustarch.jobs import setup_job

log = setup_job(snakemake)
frames = {"sparsity": sparsity_frame, "landscape": landscape_frame, "lipschitz": lipschitz_frame}
frame = frames[snakemake.wildcards.kind](snakemake.input.files)
write_csv(frame, snakemake.output.csv)
log(frame.to_string())
