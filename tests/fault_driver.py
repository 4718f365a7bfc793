"""Run one of workflow/scripts/*.py in this process, as Snakemake's ``script:`` would.

Used by tests/test_faults.py, which starts this file in a subprocess so that it can signal and
kill the real rule scripts (it reruns them in its own process with :func:`run_script`)::

    python tests/fault_driver.py JOB.json

``JOB.json`` holds the script name, the fake ``snakemake`` object's fields (input, output,
params, log, threads, rule, wildcards), ``typed_params`` (param name -> the class of
:mod:`robustarch.settings` it is rebuilt as, since Snakemake hands the scripts typed settings)
and optional test hooks:

- ``seed``: seed torch before the script runs, so the model the script builds has the initial
  weights of an in-process reference run;
- ``pause_at_batch``: when training polls for a stop request after its n-th batch (counted
  over the epochs of this process), touch ``marker`` and wait there until the script's own
  signal handler sees a signal, so the test can send one at a known batch;
- ``pause_after_saves``: after the n-th AutoAttack state save, touch ``marker`` and hang until
  killed.
"""

from __future__ import annotations

import importlib
import json
import runpy
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class _Namespace(dict):
    """Snakemake's Namedlist, as far as the scripts use it: attributes, [key] and .get."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _typed(params: dict, types: dict) -> dict:
    from robustarch import settings

    params = dict(params)
    for name, cls in types.items():
        if cls == "AttackSettings":
            params[name] = settings.attack_from_mapping(params[name])
        else:
            params[name] = settings.from_dict(getattr(settings, cls), params[name])
    return params


class FakeSnakemake:
    def __init__(self, job: dict):
        self.input = _Namespace(job.get("input", {}))
        self.output = _Namespace(job.get("output", {}))
        self.params = _Namespace(_typed(job.get("params", {}), job.get("typed_params", {})))
        self.wildcards = _Namespace(job.get("wildcards", {}))
        self.log = [job["log"]]
        self.threads = job.get("threads", 1)
        self.rule = job.get("rule", Path(job["script"]).stem)


def _touch(path: str) -> None:
    Path(path).touch()


def _install_hooks(job: dict) -> None:
    if job.get("pause_at_batch") is not None:
        import robustarch.train.loop as loop

        train_model = loop.train_model
        batches = {"n": 0}

        class CountingLoader(loop.DeviceLoader):
            def __iter__(self):
                for batch in super().__iter__():
                    batches["n"] += 1
                    yield batch

        def paused_train_model(*args, stop_requested, **kwargs):
            paused = {"done": False}

            def poll() -> bool:
                # Counted in batches, not polls: training may also poll between epochs.
                if batches["n"] == job["pause_at_batch"] and not paused["done"]:
                    paused["done"] = True
                    _touch(job["marker"])
                    while not stop_requested():  # the script's own handler flips this
                        time.sleep(0.005)
                return stop_requested()

            return train_model(*args, stop_requested=poll, **kwargs)

        # The training job looks train_model up in the loop module when it calls it, and the
        # loop looks DeviceLoader up when it builds one, so both pick up these stand-ins.
        loop.DeviceLoader = CountingLoader
        loop.train_model = paused_train_model

    if job.get("pause_after_saves") is not None:
        # the package exports the function autoattack under the submodule's name
        aa_module = importlib.import_module("robustarch.attacks.autoattack")
        save = aa_module._save_atomic
        saves = {"n": 0}

        def save_then_hang(*args, **kwargs):
            save(*args, **kwargs)
            saves["n"] += 1
            if saves["n"] == job["pause_after_saves"]:
                _touch(job["marker"])
                while True:  # until SIGKILL
                    time.sleep(1)

        aa_module._save_atomic = save_then_hang


def run_script(job: dict) -> None:
    runpy.run_path(str(REPO / "workflow" / "scripts" / job["script"]),
                   init_globals={"snakemake": FakeSnakemake(job)}, run_name="__main__")


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    _install_hooks(job)
    if job.get("seed") is not None:
        import torch

        torch.manual_seed(job["seed"])
    run_script(job)


if __name__ == "__main__":
    main(sys.argv[1])
