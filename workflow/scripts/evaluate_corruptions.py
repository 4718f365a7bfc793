"""Accuracy of one model under every configured corruption and severity, one row per test
sample (rule evaluate_corruptions); resumes per corruption from its state folder."""

from robustarch.batch_size import eval_batch_size
from robustarch.corruptions import (
    discard_corruption_state,
    evaluate_corruptions,
    write_corruption_outcomes,
)
from robustarch.data.corruptions import load_corruption
from robustarch.data.download import md5sum
from robustarch.evaluate import load_trained_model
from robustarch.jobs import setup_job
from robustarch.train import select_device

log = setup_job(snakemake)
params = snakemake.params
device = select_device()
model, meta = load_trained_model(snakemake.input.model, device=device,
                                 fold_batchnorm=params.fold_batchnorm)
files = dict(zip(params.corruptions, snakemake.input.corruptions, strict=True))
batch_size = params.batch_size
if batch_size == "auto":  # probe forward passes on the first corrupted set's images
    probe = load_corruption(snakemake.input.corruptions[0])
    batch_size = eval_batch_size(model, probe["x"][0], probe["y"], {"kind": "clean"},
                                 configured="auto", device=device, meta=meta)
log(f"{meta['arch']}/{meta['method']}: {len(files)} corruptions x severities "
    f"{params.severities}, num_samples {params.num_samples} ({device})")
frame = evaluate_corruptions(
    model, files, params.severities, batch_size=batch_size,
    num_samples=params.num_samples, device=device, state_dir=params.state_dir,
    # A retrained model must not reuse the partial results of the previous one.
    state_key={"model_md5": md5sum(snakemake.input.model)}, log=log,
)
write_corruption_outcomes(frame, snakemake.output.outcomes)
discard_corruption_state(params.state_dir)
log(f"mean corruption accuracy: {frame['correct'].mean():.4f}")
