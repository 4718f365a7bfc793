"""The paper's Table 1 for one dataset (rule table1)."""

import json
from pathlib import Path

import pandas as pd

from robustarch.jobs import setup_job
from robustarch.report import table1_frame, with_paper_numbers, write_table

log = setup_job(snakemake)
dataset = snakemake.params.dataset
summaries = [json.loads(Path(path).read_text()) for path in snakemake.input.summaries]
frame = table1_frame(summaries, pd.read_csv(snakemake.input.architectures), dataset)
write_table(frame, snakemake.output.tex, snakemake.output.csv,
            csv_frame=with_paper_numbers(frame, dataset),
            caption=f"Table 1 ({dataset}): accuracy (%) of vanilla and PGD-Linf trained models")
log(frame.to_string())
