"""Decode a dataset once into uint8 tensor splits (rule prepare_dataset)."""

from robustarch.data import decode_dataset, save_split
from robustarch.jobs import setup_job

log = setup_job(snakemake)
splits = decode_dataset(snakemake.wildcards.dataset, snakemake.input.get("archive"))
for split in ("train", "test"):
    x, y = splits[f"x_{split}"], splits[f"y_{split}"]
    save_split(snakemake.output[split], x, y)
    log(f"{split}: {tuple(x.shape)} images, {int(y.max()) + 1} classes")
