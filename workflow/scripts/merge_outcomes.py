"""Per-attack accuracy and the sample-wise worst case of one model (rule merge_outcomes)."""

from robustarch.jobs import setup_job
from robustarch.merge import read_outcomes, summarize, write_json

log = setup_job(snakemake)
paths = dict(snakemake.input.items())
summary = summarize(read_outcomes(paths), snakemake.params.worst_case, sources=paths)
w = snakemake.wildcards
write_json({"dataset": w.dataset, "arch": w.arch, "method": w.method, **summary},
           snakemake.output.summary)
log(f"{summary}")
