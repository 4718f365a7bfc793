"""Evaluate one model under one attack, one row per test sample (rule evaluate)."""

from robustarch.checkpoint import discard_state
from robustarch.data import load_split
from robustarch.evaluate import evaluate_attack, load_trained_model, write_outcomes
from robustarch.jobs import setup_job
from robustarch.train import select_device

log = setup_job(snakemake)
params = snakemake.params
device = select_device()
model, meta = load_trained_model(snakemake.input.model, device=device)
x, y = load_split(snakemake.input.test)
if params.num_samples is not None:
    x, y = x[: params.num_samples], y[: params.num_samples]
log(f"{meta['arch']}/{meta['method']}: {params.settings} on {len(y)} samples ({device})")
outcomes = evaluate_attack(model, x, y, params.settings, batch_size=params.batch_size,
                           seed=params.seed, device=device, state_path=params.state_path)
write_outcomes(outcomes, snakemake.output.outcomes)
discard_state(params.state_path)
log(f"accuracy under {params.settings['name']}: {outcomes['correct'].mean():.4f}")
