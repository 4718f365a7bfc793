"""results/table_analysis.tex: sparsity, sharpness, Lipschitz and worst case side by side
(rule table_analysis)."""

import json
from pathlib import Path

import pandas as pd

from robustarch.analysis.tables import analysis_frame, write_analysis_table
from robustarch.jobs import setup_job

log = setup_job(snakemake)
params = snakemake.params
frame = analysis_frame(
    [tuple(model) for model in params.models],
    sparsity=pd.read_csv(snakemake.input.sparsity),
    landscape=pd.read_csv(snakemake.input.landscape),
    lipschitz=pd.read_csv(snakemake.input.lipschitz),
    summaries=[json.loads(Path(path).read_text()) for path in snakemake.input.summaries],
    categories=params.categories, dataset=params.dataset)
write_analysis_table(frame, snakemake.output.tex, snakemake.output.csv,
                     caption=f"Analysis ({params.dataset}): weight sparsity (% of all weights), "
                             "loss-landscape sharpness, local Lipschitz constant and worst-case "
                             "accuracy (%)")
log(frame.to_string())
