"""ART 1.16.0's PGD-ℓ1, the paper's reference, run in a worker process beside the current ART.

The paper's authors ran ``ProjectedGradientDescentPyTorch(norm=1)`` of the Adversarial
Robustness Toolbox ≤ 1.16; ART 1.17 changed its ℓ1 step and projection. The development
environment holds the current ART (for comparing :func:`robustarch.attacks.pgd`'s sparse ℓ1),
so ART 1.16.0 lives in its own directory, ``<venv>/art-1.16.0`` (:data:`SETUP_COMMAND`, the
README's setup step; with ``setuptools`` 79, whose ``pkg_resources`` ART 1.16 imports:
setuptools ≥ 82 no longer ships it, 80 and 81 warn that it is going), and runs in a
subprocess with that directory first on ``PYTHONPATH``: ``python -m robustarch.bench.art116
JOB OUT``.

:class:`Art116L1` starts the worker on one model (pickled whole, so its classes must be
importable: torch's or this package's) and one batch; each :meth:`Art116L1.run` is one
``generate`` call (a fresh random start from numpy's generator, seeded once), timed inside the
worker, so process start-up and imports are not counted but ART's own numpy conversions are;
:meth:`Art116L1.close` returns the adversarial images of every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

__all__ = ["ART116_VERSION", "SETUP_COMMAND", "Art116L1", "art116_dir", "art116_missing"]

ART116_VERSION = "1.16.0"
SETUP_COMMAND = ("pip install --no-deps --upgrade --target .venv/art-1.16.0 "
                 f"adversarial-robustness-toolbox=={ART116_VERSION} setuptools==79.0.1")
_PREFIX = "ART116 "  # marks the worker's protocol lines on stdout (libraries may print too)


def art116_dir() -> Path:
    """Where ART 1.16.0 is installed: ``art-1.16.0`` in the running environment's prefix (the
    README's ``.venv/art-1.16.0``)."""
    return Path(sys.prefix) / "art-1.16.0"


def art116_missing() -> str | None:
    """Why ART 1.16.0 cannot run here (a message with the fix), or None when it can."""
    art = art116_dir() / "art" / "__init__.py"
    if not art.exists():
        return (f"ART {ART116_VERSION} is not installed at {art116_dir()}; from the "
                f"repository root, with the virtual environment active, run: {SETUP_COMMAND}")
    return None


class Art116L1:
    """A worker process running ART 1.16.0's ``ProjectedGradientDescentPyTorch(norm=1)`` on
    ``model`` (a ``PyTorchClassifier`` with ``nn.CrossEntropyLoss()``, ``clip_values=(0, 1)``)
    against the labelled batch ``(x, y)``, as one ART batch. Use as a context manager."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                 eps_step: float, max_iter: int, num_random_init: int = 1, seed: int = 0,
                 num_classes: int = 10) -> None:
        from robustarch.atomic import save_torch

        reason = art116_missing()
        if reason is not None:
            raise FileNotFoundError(reason)
        self._dir = tempfile.TemporaryDirectory(prefix="robustarch-art116-")
        folder = Path(self._dir.name)
        self._out = folder / "adversarial.pt"
        self._stderr_path = folder / "stderr.txt"
        # The model travels as TorchScript (the same ops, no pickled Python), the rest as
        # tensors and numbers, so the worker loads nothing with weights_only=False.
        was_training = model.training
        with torch.no_grad(), warnings.catch_warnings():
            # deprecated in torch 2.14 for torch.export, which cannot feed ART an nn.Module
            # with input gradients as directly; tracing still works and runs the same ops
            warnings.simplefilter("ignore", FutureWarning)
            traced = torch.jit.trace(model.eval(), x[:1].detach())
            torch.jit.save(traced, str(folder / "model.pt"))
        model.train(was_training)
        job = dict(x=x.detach().cpu().float(), y=y.detach().cpu().long(),
                   eps=float(eps), eps_step=float(eps_step), max_iter=int(max_iter),
                   num_random_init=int(num_random_init), seed=int(seed),
                   num_classes=int(num_classes), device=str(x.device),
                   threads=torch.get_num_threads())
        save_torch(job, folder / "job.pt")
        package_root = Path(__file__).resolve().parents[2]  # the directory holding robustarch/
        path = [str(art116_dir()), str(package_root), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
        self._stderr = self._stderr_path.open("w")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "robustarch.bench.art116", str(folder / "job.pt"),
             str(self._out)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            env=env, cwd=folder)  # `-m` puts the working directory on sys.path: keep it empty
        try:
            self._receive()  # "ready": the model is loaded and the attack built
        except BaseException:
            self._cleanup()
            raise

    def _receive(self) -> dict[str, Any]:
        for line in self._proc.stdout:
            if line.startswith(_PREFIX):
                return json.loads(line[len(_PREFIX):])
        self._proc.wait()
        self._stderr.flush()
        tail = self._stderr_path.read_text()[-3000:]
        raise RuntimeError(f"the ART {ART116_VERSION} worker exited with status "
                           f"{self._proc.returncode}:\n{tail}")

    def run(self, num_random_init: int | None = None) -> float:
        """One ``generate`` call on the whole batch (with ``num_random_init`` instead of the
        worker's own, if given); its seconds, as the worker timed them."""
        self._proc.stdin.write(json.dumps({"num_random_init": num_random_init}) + "\n")
        self._proc.stdin.flush()
        return float(self._receive()["seconds"])

    def close(self) -> list[torch.Tensor]:
        """Stop the worker; the adversarial images of each :meth:`run`, in order (CPU)."""
        self._proc.stdin.close()
        self._receive()  # "done": the results are written
        self._proc.wait()
        return torch.load(self._out, weights_only=True)

    def _cleanup(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()
        self._dir.cleanup()

    def __enter__(self) -> Art116L1:
        return self

    def __exit__(self, *exc) -> None:
        self._cleanup()


def _say(message: dict[str, Any]) -> None:
    print(_PREFIX + json.dumps(message), flush=True)


def _worker(job_path: str, out_path: str) -> int:
    import time

    import art
    import numpy as np
    from art.attacks.evasion import ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier
    from torch import nn

    from robustarch.atomic import save_torch

    if art.__version__ != ART116_VERSION:
        raise RuntimeError(f"expected ART {ART116_VERSION} first on PYTHONPATH, imported "
                           f"{art.__version__} from {art.__file__}")
    job = torch.load(job_path, weights_only=True)
    torch.set_num_threads(job["threads"])
    device = torch.device(job["device"])
    model = torch.jit.load(str(Path(job_path).with_name("model.pt")), map_location=device)
    model.eval()
    x, y = job["x"].numpy(), job["y"].numpy()
    classifier = PyTorchClassifier(
        model=model, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
        nb_classes=job["num_classes"], clip_values=(0.0, 1.0),
        device_type="gpu" if device.type == "cuda" else "cpu")
    attacks: dict[int, ProjectedGradientDescentPyTorch] = {}

    def attack(num_random_init: int) -> ProjectedGradientDescentPyTorch:
        if num_random_init not in attacks:
            attacks[num_random_init] = ProjectedGradientDescentPyTorch(
                classifier, norm=1, eps=job["eps"], eps_step=job["eps_step"],
                max_iter=job["max_iter"], num_random_init=num_random_init, batch_size=len(x),
                verbose=False)
        return attacks[num_random_init]

    attack(job["num_random_init"])
    np.random.seed(job["seed"])  # ART draws its random starts from numpy's global generator
    _say({"ready": True})
    results = []
    for line in sys.stdin:
        request = json.loads(line)
        runs = request["num_random_init"]
        runs = job["num_random_init"] if runs is None else runs
        start = time.perf_counter()
        adv = attack(runs).generate(x=x, y=y)  # numpy out: the device work is finished
        seconds = time.perf_counter() - start
        results.append(torch.from_numpy(np.asarray(adv, dtype=np.float32)))
        _say({"seconds": seconds})
    save_torch(results, out_path)
    _say({"done": True})
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m robustarch.bench.art116 JOB OUT")
    sys.exit(_worker(sys.argv[1], sys.argv[2]))
