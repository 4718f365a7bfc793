"""Weight sparsity, loss landscape and local Lipschitz constant of one model (rule
analyse_model): one job per model, since importing torch costs more than the three analyses
at the demo's sizes."""

import time

from robustarch.analysis._io import write_json
from robustarch.analysis.landscape import landscape_samples, loss_landscape, save_landscape
from robustarch.analysis.lipschitz import local_lipschitz
from robustarch.analysis.sparsity import sparsity_report
from robustarch.data import load_split
from robustarch.evaluate import load_trained_model
from robustarch.jobs import setup_job
from robustarch.train import select_device

log = setup_job(snakemake)
params = snakemake.params
keys = {"dataset": snakemake.wildcards.dataset, "arch": snakemake.wildcards.arch,
        "method": snakemake.wildcards.method}
device = select_device()
model, meta = load_trained_model(snakemake.input.model, device=device)

start = time.perf_counter()
report = sparsity_report(model, **params.sparsity)
write_json({**keys, **report}, snakemake.output.sparsity)
log(f"sparsity of all weights {report['components']['all']['ratio']:.4f} "
    f"({time.perf_counter() - start:.1f}s)")

start = time.perf_counter()
land = dict(params.landscape)
x, y = load_split(snakemake.input.train)
index = landscape_samples(len(y), land.pop("samples"), land["seed"])
result = loss_landscape(model, x[index], y[index], **land)
save_landscape(result, snakemake.output.landscape, **keys)
log(f"landscape: centre loss {result['centre_loss']:.4f}, sharpness {result['sharpness']:.4f} "
    f"({time.perf_counter() - start:.1f}s)")

start = time.perf_counter()
lip = dict(params.lipschitz)
x, _ = load_split(snakemake.input.test)
estimates = local_lipschitz(model, x[: lip["samples"]], eps=lip["eps"], steps=lip["steps"],
                            step_size=lip["step_size"], restarts=lip["restarts"],
                            batch_size=lip["batch_size"], seed=lip["seed"])
write_json({**keys, **{k: lip[k] for k in ("eps", "steps", "step_size", "restarts", "seed")},
            "samples": len(estimates), "lipschitz": float(estimates.mean()),
            "lipschitz_std": float(estimates.std()) if len(estimates) > 1 else 0.0,
            "lipschitz_median": float(estimates.median())}, snakemake.output.lipschitz)
log(f"local Lipschitz constant {float(estimates.mean()):.4f} on {len(estimates)} test samples "
    f"({time.perf_counter() - start:.1f}s, {device})")
