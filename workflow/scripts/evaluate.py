"""Evaluate one model under one attack, one row per test sample (rule evaluate)."""

from robustarch.batch_size import eval_batch_size
from robustarch.checkpoint import discard_state
from robustarch.data import load_split
from robustarch.evaluate import evaluate_attack, load_trained_model, write_outcomes
from robustarch.jobs import setup_job
from robustarch.train import select_device

log = setup_job(snakemake)
params = snakemake.params
device = select_device()
model, meta = load_trained_model(snakemake.input.model, device=device,
                                 fold_batchnorm=params.fold_batchnorm)
x, y = load_split(snakemake.input.test)
if params.num_samples is not None:
    x, y = x[: params.num_samples], y[: params.num_samples]
batch_size = eval_batch_size(model, x, y, params.settings, configured=params.batch_size,
                             device=device, meta=meta, bf16=params.bf16)
log(f"{meta['arch']}/{meta['method']}: {params.settings} on {len(y)} samples ({device}, "
    f"batch {batch_size}{', bf16' if params.bf16 else ''})")
outcomes = evaluate_attack(model, x, y, params.settings, batch_size=batch_size,
                           seed=params.seed, device=device, state_path=params.state_path,
                           bf16=params.bf16)
write_outcomes(outcomes, snakemake.output.outcomes)
discard_state(params.state_path)
log(f"accuracy under {params.settings['name']}: {outcomes['correct'].mean():.4f}")
