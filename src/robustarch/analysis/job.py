"""The analysis job (rule ``analyse_model``): weight sparsity, loss landscape and local
Lipschitz constant of one model. One job per model, since importing torch costs more than the
three analyses at the demo's sizes."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ..atomic import write_json
from ..data.splits import load_split
from ..evaluate.loading import load_trained_model
from ..runtime import select_device
from ..settings import AnalysisSettings
from .landscape import landscape_samples, loss_landscape
from .landscape_file import save_landscape
from .lipschitz import local_lipschitz
from .sparsity import sparsity_report


def run_analysis_job(*, model: str | Path, train: str | Path, test: str | Path,
                     settings: AnalysisSettings, keys: Mapping[str, str],
                     sparsity_path: str | Path, landscape_path: str | Path,
                     lipschitz_path: str | Path, log: Callable[[str], None]) -> None:
    """Write the three analyses of ``model``; ``keys`` (dataset, arch, method) label them."""
    device = select_device()
    # The trained weights, unfolded: the analyses read the weights themselves.
    net, meta = load_trained_model(model, device=device)
    keys = dict(keys)

    start = time.perf_counter()
    sparse = settings.sparsity
    report = sparsity_report(net, threshold=sparse.threshold, bins=sparse.bins,
                             untrained=meta["untrained"])
    write_json({**keys, **report}, sparsity_path, compact=True, allow_nan=False)
    every = report["components"]["all"]
    trained = (f"of the trained ones {every['ratio_trained']:.4f} ({every['untrained_share']:.2%} "
               "never trained)" if report["untrained_known"] else "untrained weights unknown "
               "(the model file predates that record: all counted as trained)")
    log(f"sparsity of all weights {every['ratio']:.4f}, {trained} "
        f"({time.perf_counter() - start:.1f}s)")

    start = time.perf_counter()
    land = settings.landscape
    x, y = load_split(train)
    index = landscape_samples(len(y), land.samples, land.seed)
    result = loss_landscape(net, x[index], y[index], grid=land.grid, radius=land.radius,
                            batch_size=land.batch_size, seed=land.seed)
    save_landscape(result, landscape_path, **keys)
    log(f"landscape: centre loss {result['centre_loss']:.4f}, sharpness "
        f"{result['sharpness']:.4f} ({time.perf_counter() - start:.1f}s)")

    start = time.perf_counter()
    lip = settings.lipschitz
    x, _ = load_split(test)
    estimates = local_lipschitz(net, x[: lip.samples], eps=lip.eps, steps=lip.steps,
                                step_size=lip.step_size, restarts=lip.restarts,
                                batch_size=lip.batch_size, seed=lip.seed)
    write_json({**keys, "eps": lip.eps, "steps": lip.steps, "step_size": lip.step_size,
                "restarts": lip.restarts, "seed": lip.seed, "samples": len(estimates),
                "lipschitz": float(estimates.mean()),
                "lipschitz_std": float(estimates.std()) if len(estimates) > 1 else 0.0,
                "lipschitz_median": float(estimates.median())},
               lipschitz_path, compact=True, allow_nan=False)
    log(f"local Lipschitz constant {float(estimates.mean()):.4f} on {len(estimates)} test "
        f"samples ({time.perf_counter() - start:.1f}s, {device})")
