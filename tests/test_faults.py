"""Fault injection: each failure the workflow must survive or report clearly (issue #8).

Training and evaluation faults run the real rule scripts (workflow/scripts/*.py) in their own
processes through tests/fault_driver.py, a stand-in for Snakemake's ``script:``, so that they can
be killed and signalled for real. Results are compared bit for bit with an uninterrupted run of
the same seed in this process (CPU, one thread, so deterministic).

Related in-process tests elsewhere: tests/test_train.py (stop callback at a batch, NaN model),
tests/test_data.py (archive member checks, file:// downloads), tests/test_config.py,
tests/test_evaluate_merge.py (truncated model file), tests/test_attacks_crosscheck.py
(AutoAttack resumed after an exception).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dataclasses
import hashlib
import http.server
import importlib
import io
import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import fault_driver
import pandas as pd
import pytest
import torch
from conftest import REPO, tiny_settings_dict

from robustarch.config import ConfigError, validate_config
from robustarch.data import DATASETS, ChecksumError, UnsafeArchiveError, load_split, save_split
from robustarch.data.download import DownloadError, download
from robustarch.errors import CorruptFileError
from robustarch.evaluate import evaluate_attack, load_trained_model
from robustarch.models import UnknownModelError, create_model, list_models
from robustarch.settings import TrainingSettings, from_dict
from robustarch.train import (
    NonFiniteLossError,
    data_digest,
    list_checkpoints,
    load_latest_checkpoint,
    load_model_file,
    run_fingerprint,
    save_trained_model,
    train_model,
    write_metrics,
)

DRIVER = Path(fault_driver.__file__)
CPU = torch.device("cpu")
N_TRAIN, N_TEST = 96, 50
SETTINGS_DICT = tiny_settings_dict(method="pgd_linf", epochs=3, batch_size=32, lr=1e-2,
                                   adversary=dict(eps=8 / 255, steps=1, step_size=8 / 255,
                                                  random_start=True))
SETTINGS = from_dict(TrainingSettings, SETTINGS_DICT)
STEPS = N_TRAIN // SETTINGS.batch_size  # batches per epoch
EPOCHS = SETTINGS.epochs

# Where a run stopped by SIGTERM after the 2nd batch of epoch 2 continues: training writes a
# checkpoint at the batch where it saw the signal, so the rerun picks up after that batch.
# (With epoch-only checkpoints this would be {"epoch": 1, "batch": None}.)
SIGTERM_AT_BATCH = STEPS + 2
EXPECTED_RESUME_AFTER_SIGTERM = {"epoch": 1, "batch": 2}


# --------------------------------------------------------------------------- helpers


def _create_model(arch: str = "resnet") -> torch.nn.Module:
    s = SETTINGS
    return create_model(arch, num_classes=s.num_classes, image_size=s.image_size,
                        scale=s.scale, mean=s.mean, std=s.std)


@pytest.fixture(scope="module")
def splits(tmp_path_factory, digits) -> Path:
    folder = tmp_path_factory.mktemp("data")
    save_split(folder / "train.pt", digits["x_train"][:N_TRAIN], digits["y_train"][:N_TRAIN])
    save_split(folder / "test.pt", digits["x_test"][:N_TEST], digits["y_test"][:N_TEST])
    return folder


@pytest.fixture(scope="module")
def reference(splits, tmp_path_factory):
    """The uninterrupted run every interrupted one must match, bit for bit."""
    torch.set_num_threads(1)  # as the scripts run (threads: 1); module fixtures precede autouse
    torch.manual_seed(SETTINGS.seed)  # what fault_driver does before the script builds it
    return train_model(_create_model(), load_split(splits / "train.pt"),
                       load_split(splits / "test.pt"), SETTINGS,
                       checkpoint_dir=tmp_path_factory.mktemp("reference"), device=CPU,
                       log=lambda m: None)


def _assert_same_weights(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]):
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), f"{key} differs from the uninterrupted run"


def _assert_same_untrained(model: dict, expected: dict[str, torch.Tensor]) -> None:
    """model.pt's record of never-trained elements is the uninterrupted run's."""
    assert model["untrained"].keys() == expected.keys()
    for key, mask in expected.items():
        assert torch.equal(model["untrained"][key], mask), f"{key}'s untrained mask differs"


def _assert_same_metrics(csv: Path, expected: list[dict], tmp_path: Path) -> None:
    write_metrics(expected, tmp_path / "expected.csv")  # same CSV round trip for both sides
    frames = [pd.read_csv(p).drop(columns="time_s") for p in (csv, tmp_path / "expected.csv")]
    pd.testing.assert_frame_equal(*frames, check_exact=True)


def _listing(folder: Path) -> list[str]:
    """Everything under ``folder`` (hidden temporary files included), relative and sorted."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _train_job(work: Path, splits: Path, **extra) -> dict:
    # Snakemake creates the folders of a job's log and outputs before it starts.
    for sub in ("results", "logs"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    return {
        "script": "train.py", "rule": "train", "seed": SETTINGS.seed,
        "input": {"train": str(splits / "train.pt"), "test": str(splits / "test.pt")},
        "output": {"model": str(work / "results" / "model.pt"),
                   "metrics": str(work / "results" / "metrics.csv")},
        "params": {"settings": SETTINGS_DICT, "checkpoint_dir": str(work / "checkpoints")},
        "typed_params": {"settings": "TrainingSettings"},
        "log": str(work / "logs" / "train.log"), "marker": str(work / "paused"), **extra,
    }


@contextlib.contextmanager
def _running(job: dict, name: str):
    """The driver running ``job`` in its own process; killed if the test leaves it running."""
    job_file = Path(job["log"]).parent / f"{name}.json"
    job_file.write_text(json.dumps(job))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(DRIVER), str(job_file)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _run_here(job: dict, monkeypatch) -> list[str]:
    """Run ``job``'s script in this process (a rerun needs no fresh process: all it reads is on
    disk); returns what it logged. Its job setup would take over this process's stdout and
    logging, so it is replaced by a list, and its signal handlers are put back afterwards."""
    import robustarch.workflow

    messages: list[str] = []
    monkeypatch.setattr(robustarch.workflow, "setup_job", lambda snakemake: messages.append)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        fault_driver.run_script(job)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return messages


def _log(job: dict) -> str:
    path = Path(job["log"])
    return path.read_text() if path.exists() else ""


def _wait_for(condition, proc: subprocess.Popen, job: dict, what: str, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the job exited ({proc.returncode}) before {what}:\n{_log(job)}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{_log(job)}")
        time.sleep(0.002)


def _kill(proc: subprocess.Popen, sig: signal.Signals) -> int:
    os.kill(proc.pid, sig)
    proc.wait(timeout=120)
    return proc.returncode


# --------------------------------------------------------------------------- training


def test_sigkill_after_second_checkpoint_resumes_bit_identically(tmp_path, splits, reference,
                                                                  monkeypatch):
    job = _train_job(tmp_path, splits)
    checkpoints = tmp_path / "checkpoints"
    with _running(job, "first") as proc:
        _wait_for(lambda: (checkpoints / "epoch-0002.pt").exists(), proc, job,
                  "the second checkpoint")
        assert _kill(proc, signal.SIGKILL) == -signal.SIGKILL
    assert _listing(tmp_path / "results") == []  # no model.pt, metrics.csv or temporary file
    # The kill lands within milliseconds of epoch 2's checkpoint appearing, well before the
    # last epoch ends; the rerun must continue from the newest complete checkpoint.
    newest = list_checkpoints(checkpoints)[-1]
    resume_epoch = int(newest.stem.split("-")[1])
    assert 2 <= resume_epoch < EPOCHS, "killed too late: the run had nothing left to do"

    log = _run_here(job, monkeypatch)
    assert f"resuming from the checkpoint of epoch {resume_epoch}" in log
    model = load_model_file(tmp_path / "results" / "model.pt")
    assert model["resumed"] is True
    assert model["resumed_from_epoch"] == resume_epoch and model["resumed_from_batch"] is None
    data = data_digest(splits / "train.pt", splits / "test.pt")
    assert model["fingerprint"] == run_fingerprint(SETTINGS, data=data).digests()
    _assert_same_weights(model["state_dict"], reference.state_dict)
    _assert_same_untrained(model, reference.untrained)
    _assert_same_metrics(tmp_path / "results" / "metrics.csv", reference.metrics, tmp_path)
    assert not checkpoints.exists()  # a finished run drops its checkpoints


def test_sigkill_then_a_changed_recipe_starts_fresh_and_sets_the_checkpoints_aside(
        tmp_path, splits, monkeypatch):
    """A killed run whose recipe then changes (here the lr) must not continue under the new
    one: the rerun sets the old checkpoints aside, says so in one log line, trains from scratch
    (bit-identical to a fresh run of the new recipe) and records resumed False."""
    job = _train_job(tmp_path, splits)
    checkpoints = tmp_path / "checkpoints"
    with _running(job, "first") as proc:
        _wait_for(lambda: (checkpoints / "epoch-0001.pt").exists(), proc, job,
                  "the first checkpoint")
        assert _kill(proc, signal.SIGKILL) == -signal.SIGKILL
    left = [p.name for p in list_checkpoints(checkpoints)]
    assert left and left[-1] != f"epoch-{EPOCHS:04d}.pt"

    changed = {**SETTINGS_DICT, "lr": 2 * SETTINGS.lr}
    job["params"]["settings"] = changed
    log = _run_here(job, monkeypatch)
    lines = [m for m in log if m.startswith("not resuming")]
    assert len(lines) == 1, log
    assert f"other settings (lr: {SETTINGS.lr!r} -> {2 * SETTINGS.lr!r})" in lines[0]
    assert f"set aside as {', '.join(n + '.stale-settings' for n in left)};" in lines[0]
    assert not any(m.startswith("resuming") for m in log)
    assert _listing(checkpoints) == [n + ".stale-settings" for n in left]  # new ones cleared

    model = load_model_file(tmp_path / "results" / "model.pt")
    assert model["resumed"] is False and model["resumed_from_epoch"] is None
    fresh_settings = from_dict(TrainingSettings, changed)
    data = data_digest(splits / "train.pt", splits / "test.pt")
    assert model["fingerprint"] == run_fingerprint(fresh_settings, data=data).digests()
    torch.set_num_threads(1)
    torch.manual_seed(SETTINGS.seed)
    fresh = train_model(_create_model(), load_split(splits / "train.pt"),
                        load_split(splits / "test.pt"), fresh_settings,
                        checkpoint_dir=tmp_path / "fresh", device=CPU, log=lambda m: None)
    _assert_same_weights(model["state_dict"], fresh.state_dict)
    _assert_same_metrics(tmp_path / "results" / "metrics.csv", fresh.metrics, tmp_path)


def test_truncated_newest_checkpoint_falls_back_to_the_one_before(tmp_path, splits, reference):
    train, test = load_split(splits / "train.pt"), load_split(splits / "test.pt")
    newest = tmp_path / "epoch-0002.pt"
    torch.manual_seed(SETTINGS.seed)
    with pytest.raises(InterruptedError, match="checkpoint of epoch 2"):
        # A stop request right after epoch 2's checkpoint: the run ends at that epoch boundary.
        train_model(_create_model(), train, test, SETTINGS, checkpoint_dir=tmp_path, device=CPU,
                    log=lambda m: None, stop_requested=newest.exists)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["epoch-0001.pt", newest.name]
    # What a node dying while the file system flushed leaves: the first half of the file.
    damaged = newest.read_bytes()[: newest.stat().st_size // 2]
    newest.write_bytes(damaged)

    messages: list[str] = []
    result = train_model(_create_model(), train, test, SETTINGS, checkpoint_dir=tmp_path,
                         device=CPU, log=messages.append)
    assert result.resumed_from == {"epoch": 1, "batch": None}
    warning = next(m for m in messages if m.startswith("WARNING"))
    assert str(newest) in warning and "unreadable" in warning
    assert "falling back to the previous checkpoint" in warning
    assert "resuming from the checkpoint of epoch 1" in messages
    set_aside = tmp_path / "epoch-0002.pt.corrupt"
    assert set_aside.read_bytes() == damaged
    assert _listing(tmp_path) == ["epoch-0002.pt", "epoch-0002.pt.corrupt", "epoch-0003.pt"]
    _assert_same_weights(result.state_dict, reference.state_dict)
    assert [{k: v for k, v in r.items() if k != "time_s"} for r in result.metrics] == [
        {k: v for k, v in r.items() if k != "time_s"} for r in reference.metrics]


def test_no_readable_checkpoint_means_a_fresh_start(tmp_path):
    (tmp_path / "epoch-0001.pt").write_bytes(b"")
    torch.save([1, 2, 3], tmp_path / "epoch-0002.pt")  # readable, but not a checkpoint
    messages: list[str] = []
    assert load_latest_checkpoint(tmp_path, log=messages.append) is None
    assert len(messages) == 2 and all("unreadable" in m for m in messages)
    assert _listing(tmp_path) == ["epoch-0001.pt.corrupt", "epoch-0002.pt.corrupt"]


def test_sigterm_mid_epoch_stops_without_a_model_and_resumes(tmp_path, splits, reference,
                                                             monkeypatch):
    job = _train_job(tmp_path, splits, pause_at_batch=SIGTERM_AT_BATCH)
    with _running(job, "first") as proc:
        # The driver holds training after batch SIGTERM_AT_BATCH until the signal arrives.
        _wait_for(Path(job["marker"]).exists, proc, job, f"batch {SIGTERM_AT_BATCH}")
        assert _kill(proc, signal.SIGTERM) == 1
    log = _log(job)
    assert "received SIGTERM" in log and "run the job again" in log
    assert _listing(tmp_path / "results") == []  # no model.pt, metrics.csv or temporary file
    assert list_checkpoints(tmp_path / "checkpoints"), "no checkpoint left to resume from"

    _run_here(job, monkeypatch)
    model = load_model_file(tmp_path / "results" / "model.pt")
    assert model["resumed"] is True
    assert {"epoch": model["resumed_from_epoch"], "batch": model["resumed_from_batch"]} == (
        EXPECTED_RESUME_AFTER_SIGTERM)
    _assert_same_weights(model["state_dict"], reference.state_dict)
    _assert_same_untrained(model, reference.untrained)
    _assert_same_metrics(tmp_path / "results" / "metrics.csv", reference.metrics, tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_nan_loss_fails_clearly_and_writes_nothing(tmp_path, splits, monkeypatch):
    job = _train_job(tmp_path, splits)
    job["params"]["settings"] = {**SETTINGS_DICT, "lr": 1e30, "warmup_epochs": 0}
    with pytest.raises(NonFiniteLossError) as info:
        _run_here(job, monkeypatch)
    message = str(info.value)
    assert "training loss became nan in epoch 1" in message
    assert "Lower the learning rate (training.lr)" in message
    assert "no model file was written" in message
    assert _listing(tmp_path / "results") == [] and _listing(tmp_path / "checkpoints") == []


# --------------------------------------------------------------------------- evaluation

AA_SETTINGS = {"name": "aa_linf", "kind": "autoattack", "norm": "linf", "eps": 8 / 255,
               "version": "custom", "components": ["apgd-ce", "apgd-t"], "iterations": 5,
               "restarts": 1, "target_classes": None, "queries": None}
AA_BATCH = 2


def _evaluate_job(work: Path, splits: Path, model: Path, settings: dict, **extra) -> dict:
    for sub in ("results/eval", "logs"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    return {
        "script": "evaluate.py", "rule": "evaluate",
        "input": {"model": str(model), "test": str(splits / "test.pt")},
        "output": {"outcomes": str(work / "results" / "eval" / f"{settings['name']}.parquet")},
        "params": {"attack": settings,
                   "evaluation": {"batch_size": AA_BATCH, "num_samples": None, "seed": 0,
                                  "bf16": False, "fold_batchnorm": True},
                   "state_path": str(work / "checkpoints" / f"{settings['name']}.state")},
        "typed_params": {"attack": "AttackSettings", "evaluation": "EvaluationSettings"},
        "log": str(work / "logs" / "evaluate.log"), "marker": str(work / "paused"), **extra,
    }


def test_autoattack_killed_midway_resumes_from_its_state(tmp_path, splits, reference,
                                                         monkeypatch):
    pytest.importorskip("pyautoattack")
    # the package exports the function autoattack under the submodule's name
    aa_module = importlib.import_module("robustarch.attacks.autoattack")

    model_file = tmp_path / "model.pt"
    save_trained_model(model_file, reference, SETTINGS)
    model, _ = load_trained_model(model_file, fold_batchnorm=True)  # as the job loads it
    x, y = load_split(splits / "test.pt")
    save = aa_module._save_atomic
    saves = {"n": 0}

    def counted(*args):
        saves["n"] += 1
        save(*args)

    monkeypatch.setattr(aa_module, "_save_atomic", counted)
    expected = evaluate_attack(model, x, y, AA_SETTINGS, batch_size=AA_BATCH, seed=0, device=CPU,
                               state_path=tmp_path / "reference.state")

    # Killed right after the state of the first batch of the first stage is on disk
    # (save 1: the clean pass; save 2: apgd-ce's first batch).
    job = _evaluate_job(tmp_path, splits, model_file, AA_SETTINGS, pause_after_saves=2)
    state_path = Path(job["params"]["state_path"])
    with _running(job, "first") as proc:
        _wait_for(Path(job["marker"]).exists, proc, job, "the second state save")
        assert _kill(proc, signal.SIGKILL) == -signal.SIGKILL
    assert _listing(tmp_path / "results") == ["eval"]  # no outcomes, no temporary file
    assert _listing(state_path.parent) == [state_path.name]
    state = json.loads(state_path.read_text())
    assert state["clean_done"] and (state["stage"], state["next_batch"]) == (0, 1)
    robust_after_clean = state["broken_at"].count(-1)
    assert robust_after_clean > AA_BATCH, "apgd-ce has one batch only: nothing left to resume"

    full_run_saves, saves["n"] = saves["n"], 0
    _run_here(job, monkeypatch)
    # The rerun did only the remaining work: every save but the two already on disk.
    assert saves["n"] == full_run_saves - 2
    outcomes = pd.read_parquet(job["output"]["outcomes"])
    pd.testing.assert_frame_equal(outcomes, expected, check_exact=True)
    assert not state_path.parent.exists()  # a finished evaluation drops its state


def test_per_model_evaluation_killed_between_attacks_keeps_the_finished_ones(
        tmp_path, splits, reference, monkeypatch):
    """evaluation.jobs: per_model: a job stopped in its second attack reruns only that one;
    its outputs equal the per_attack jobs' and a retrained model starts over."""
    from robustarch.evaluate import jobs as eval_jobs
    from robustarch.settings import (
        CleanSettings,
        EvaluationSettings,
        PGDAlgorithm,
        PGDSettings,
    )

    model_file = tmp_path / "model.pt"
    save_trained_model(model_file, reference, SETTINGS)
    attacks = {"clean": CleanSettings(), "pgd_linf": PGDSettings(
        name="pgd_linf", norm="linf", eps=8 / 255, steps=3, step_size=2 / 255,
        random_start=True, early_stop=False, algorithm=PGDAlgorithm.ROBUSTARCH)}
    evaluation = EvaluationSettings(batch_size=16, num_samples=None, seed=0, bf16=False,
                                    fold_batchnorm=True)
    outputs = {name: tmp_path / "results" / f"{name}.parquet" for name in attacks}
    state_dir = tmp_path / "checkpoints" / "model"
    job = dict(model=model_file, test=splits / "test.pt", attacks=attacks,
               evaluation=evaluation, outcomes=outputs, state_dir=state_dir)
    real, evaluated = eval_jobs.evaluate_attack, []

    def stopped_in_pgd(model, x, y, settings, **kwargs):
        evaluated.append(settings.name)
        if settings.name == "pgd_linf" and len(evaluated) == 2:
            raise KeyboardInterrupt  # as a kill in the middle of the attack
        return real(model, x, y, settings, **kwargs)

    monkeypatch.setattr(eval_jobs, "evaluate_attack", stopped_in_pgd)
    with pytest.raises(KeyboardInterrupt):
        eval_jobs.run_model_attacks_job(**job, log=lambda _m: None)
    assert not any(path.exists() for path in outputs.values())
    assert _listing(state_dir) == ["outcomes", "outcomes/clean.parquet", "outcomes/key.json"]

    messages = []
    eval_jobs.run_model_attacks_job(**job, log=messages.append)
    assert evaluated == ["clean", "pgd_linf", "pgd_linf"]  # clean was not evaluated again
    assert any(m.startswith("clean: finished before") for m in messages)
    assert not state_dir.exists()  # every output written: the kept attacks are dropped
    for name, settings in attacks.items():  # as the per_attack job writes them
        single = tmp_path / "single" / f"{name}.parquet"
        eval_jobs.run_attack_job(model=model_file, test=splits / "test.pt", attack=settings,
                                 evaluation=evaluation, outcomes=single,
                                 state_path=tmp_path / "single" / f"{name}.state",
                                 log=lambda _m: None)
        pd.testing.assert_frame_equal(pd.read_parquet(outputs[name]), pd.read_parquet(single),
                                      check_exact=True)

    # An attack kept for another model file (retrained since) is evaluated again.
    evaluated.clear()
    with pytest.raises(KeyboardInterrupt):
        eval_jobs.run_model_attacks_job(**job, log=lambda _m: None)
    save_trained_model(model_file, reference, dataclasses.replace(SETTINGS, epochs=EPOCHS + 1))
    eval_jobs.run_model_attacks_job(**job, log=lambda _m: None)
    assert evaluated == ["clean", "pgd_linf", "clean", "pgd_linf"]


class _Marker:
    """Unpickling this creates a file: proof of whether loading ran code from the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "code", "not_a_model"])
def test_corrupt_model_file_is_named_with_the_fix(tmp_path, reference, damage):
    path = tmp_path / "model.pt"
    save_trained_model(path, reference, SETTINGS)
    marker = tmp_path / "code-ran"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "code":
        torch.save({"state_dict": _Marker(marker)}, path)
    else:
        torch.save({"state_dict": reference.state_dict}, path)
    with pytest.raises(CorruptFileError) as info:
        load_trained_model(path)
    message = str(info.value)
    assert str(path) in message and "Delete it and run the workflow again" in message
    if damage == "not_a_model":
        assert "lacks ['arch'," in message and "not a robustarch model file" in message
    else:
        assert "corrupt or incomplete" in message
    assert not marker.exists()  # weights_only loading never runs a file's code


def test_corrupt_model_file_stops_evaluation_without_output(tmp_path, splits, reference,
                                                            monkeypatch):
    model_file = tmp_path / "model.pt"
    save_trained_model(model_file, reference, SETTINGS)
    model_file.write_bytes(model_file.read_bytes()[:1000])
    job = _evaluate_job(tmp_path, splits, model_file, AA_SETTINGS)
    with pytest.raises(CorruptFileError, match=re.escape(
            f"model file {model_file} is corrupt or incomplete")) as info:
        _run_here(job, monkeypatch)
    assert "Delete it and run the workflow again" in str(info.value)
    assert _listing(tmp_path / "results") == ["eval"] and _listing(tmp_path / "checkpoints") == []


def _assert_unknown_architecture(error: UnknownModelError, name: str) -> None:
    message = str(error)
    assert f"unknown architecture {name!r}" in message
    assert f"registered architectures are: {', '.join(list_models())}." in message
    assert "Add one as a module of robustarch/models/families/" in message


def test_unknown_architecture_stops_training_before_any_output(tmp_path, splits, monkeypatch):
    job = _train_job(tmp_path, splits)
    job["params"]["settings"] = {**SETTINGS_DICT, "arch": "reznet"}
    with pytest.raises(UnknownModelError) as info:
        _run_here(job, monkeypatch)
    _assert_unknown_architecture(info.value, "reznet")
    assert _listing(tmp_path / "results") == [] and _listing(tmp_path / "checkpoints") == []


def test_model_file_of_unknown_architecture_lists_the_valid_names(tmp_path, reference):
    path = tmp_path / "model.pt"  # e.g. written by a version that had an architecture since gone
    save_trained_model(path, reference, dataclasses.replace(SETTINGS, arch="resnet9000"))
    with pytest.raises(UnknownModelError) as info:
        load_trained_model(path)
    _assert_unknown_architecture(info.value, "resnet9000")


# --------------------------------------------------------------------------- configuration


def test_config_typos_are_all_named_with_a_suggestion(paper_config, schema):
    config = copy.deepcopy(paper_config)
    config["trainig"] = config.pop("training")
    config["attacks"]["pgd_linf"]["stpes"] = config["attacks"]["pgd_linf"].pop("steps")
    with pytest.raises(ConfigError) as info:
        validate_config(config, schema, known_architectures=list_models(),
                        known_datasets=DATASETS)
    message = str(info.value)
    assert "config key 'trainig' is not a valid key (did you mean 'training'?)" in message
    assert ("config key 'attacks.pgd_linf.stpes' is not a valid key (did you mean 'steps'?)"
            in message)
    assert re.search(r"valid keys here: [a-z_, ]*\bsteps\b", message)


# --------------------------------------------------------------------------- downloads


class _Server(http.server.ThreadingHTTPServer):
    """A local HTTP server answering each request with the next planned fault (or the file)."""

    def __init__(self, body: bytes, plan: list[str]):
        self.body, self.plan, self.requests = body, plan, 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler):  # `self` is the server here
                fault = self.plan[self.requests] if self.requests < len(self.plan) else "ok"
                self.requests += 1
                body = b"<html>proxy login</html>" if fault == "wrong_file" else self.body
                handler.send_response(200)
                if fault == "chunked_cut":
                    handler.send_header("Transfer-Encoding", "chunked")
                    handler.end_headers()
                    handler.wfile.write(b"%x\r\n" % len(body) + body[: len(body) // 2])
                else:
                    handler.send_header("Content-Length", str(len(body)))
                    handler.end_headers()
                    handler.wfile.write(body[: len(body) // 2] if fault == "cut" else body)
                handler.close_connection = True

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/cifar-10-python.tar.gz"


@contextlib.contextmanager
def _serving(body: bytes, plan: list[str]):
    server = _Server(body, plan)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


BODY = os.urandom(200_000)
BODY_MD5 = hashlib.md5(BODY).hexdigest()


def test_wrong_file_fails_on_its_checksum_without_retrying(tmp_path):
    dest = tmp_path / "downloads" / "cifar-10-python.tar.gz"
    with _serving(BODY, ["wrong_file"] * 3) as server, pytest.raises(DownloadError) as info:
        download(server.url, dest, BODY_MD5, retries=3, backoff=0)
    message = str(info.value)
    assert server.url in message and f"expected {BODY_MD5}" in message
    assert f"place it at {dest.resolve()}" in message
    assert server.requests == 1  # a wrong file stays wrong: no retry
    assert _listing(dest.parent) == []


@pytest.mark.parametrize("fault", ["cut", "chunked_cut"])
def test_dropped_connection_is_retried(tmp_path, fault):
    dest = tmp_path / "cifar-10-python.tar.gz"
    with _serving(BODY, [fault]) as server:
        assert download(server.url, dest, BODY_MD5, retries=3, backoff=0) == dest
    assert server.requests == 2 and dest.read_bytes() == BODY
    assert _listing(tmp_path) == [dest.name]


@pytest.mark.parametrize("fault", ["cut", "chunked_cut"])
def test_dropped_connection_every_time_fails_clearly(tmp_path, fault):
    dest = tmp_path / "cifar-10-python.tar.gz"
    with _serving(BODY, [fault] * 2) as server, pytest.raises(DownloadError) as info:
        download(server.url, dest, BODY_MD5, retries=2, backoff=0)
    message = str(info.value)
    assert server.url in message and f"place it at {dest.resolve()}" in message
    assert "md5" not in message  # a network failure, not reported as a corrupt file
    assert server.requests == 2 and _listing(tmp_path) == []


def test_unreachable_url_names_the_url_and_where_to_put_the_file(tmp_path):
    with socket.socket() as sock:  # a port that was just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"
    dest = tmp_path / "downloads" / "cifar-10-python.tar.gz"
    with pytest.raises(DownloadError) as info:
        download(url, dest, BODY_MD5, retries=2, backoff=0, timeout=10)
    message = str(info.value)
    assert f"could not download {url}" in message and "Connection refused" in message
    assert f"download the file elsewhere and place it at {dest.resolve()}" in message
    assert _listing(dest.parent) == []


# --------------------------------------------------------------------------- archives


def _prepare_job(work: Path, dataset: str, archive: Path) -> dict:
    for sub in ("data", "logs"):
        (work / sub).mkdir(exist_ok=True)
    return {"script": "prepare_dataset.py", "rule": "prepare_dataset",
            "wildcards": {"dataset": dataset}, "input": {"archive": str(archive)},
            "output": {"train": str(work / "data" / "train.pt"),
                       "test": str(work / "data" / "test.pt")},
            "log": str(work / "logs" / "prepare.log")}


def _add_file(tar: tarfile.TarFile, name: str, data: bytes = b"x") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_link(tar: tarfile.TarFile, name: str, target: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tar.addfile(info)


@pytest.mark.parametrize("dataset, root", [("cifar10", "cifar-10-batches-py"),
                                           ("imagenette", "imagenette2-320/train/n01440764")])
@pytest.mark.parametrize("attack", ["dotdot", "absolute", "symlink_absolute",
                                    "symlink_dotdot", "hardlink_dotdot"])
def test_hostile_archive_is_refused_and_nothing_is_written(tmp_path, monkeypatch, dataset, root,
                                                           attack):
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    archive = work / "archive.tar.gz"
    evil = f"{root}/evil"
    with tarfile.open(archive, "w:gz") as tar:
        _add_file(tar, f"{root}/data_batch_1")
        if attack == "dotdot":
            evil = f"{root}/" + "../" * (root.count("/") + 2) + "outside"
            _add_file(tar, evil)
        elif attack == "absolute":
            evil = str(outside)
            _add_file(tar, evil)
        elif attack == "symlink_absolute":
            _add_link(tar, evil, str(outside), tarfile.SYMTYPE)
        elif attack == "symlink_dotdot":
            _add_link(tar, evil, "../" * (root.count("/") + 2) + "outside", tarfile.SYMTYPE)
        else:
            _add_link(tar, evil, "../outside", tarfile.LNKTYPE)
    # The archive is "official" for this test: its checksum is the one the dataset expects.
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    spec = DATASETS[dataset]
    monkeypatch.setitem(DATASETS, dataset, dataclasses.replace(
        spec, archive=dataclasses.replace(spec.archive, md5=md5)))
    monkeypatch.chdir(work)  # where a careless extraction would write relative members
    with pytest.raises(UnsafeArchiveError) as info:
        _run_here(_prepare_job(work, dataset, archive), monkeypatch)
    message = str(info.value)
    assert str(archive) in message and repr(evil) in message
    assert "absolute or '..' path" in message or "points outside the archive" in message
    assert "refusing the archive" in message
    assert _listing(work) == ["archive.tar.gz", "data", "logs"] and not outside.exists()


def test_wrong_archive_put_in_place_is_refused_before_decoding(tmp_path, monkeypatch):
    """A file placed by hand (or left by an old version) is checked like a download."""
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "cifar-10-python.tar.gz"
    marker = tmp_path / "unpickled"
    with tarfile.open(archive, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            _add_file(tar, f"cifar-10-batches-py/{name}", pickle.dumps(_Marker(marker)))
    with pytest.raises(ChecksumError) as info:
        _run_here(_prepare_job(work, "cifar10", archive), monkeypatch)
    message = str(info.value)
    actual = hashlib.md5(archive.read_bytes()).hexdigest()
    assert f"{archive}: md5 is {actual}, expected {DATASETS['cifar10'].archive.md5}" in message
    assert "delete it and run the workflow again to re-download it" in message
    assert not marker.exists()  # refused before anything in it was unpickled
    assert _listing(work) == [archive.name, "data", "logs"]


# --------------------------------------------------------------------------- code audits


def _python_files() -> list[Path]:
    return sorted((REPO / "src").rglob("*.py")) + sorted((REPO / "workflow").rglob("*.py"))


def test_every_torch_load_is_weights_only():
    """torch.load without weights_only=True unpickles arbitrary code from a file."""
    calls, unsafe = 0, []
    for path in _python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization"):
                assert "load" not in {a.name for a in node.names}, f"{path}: imports torch's load"
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load" and ast.unparse(node.func.value) in (
                        "torch", "torch.serialization")):
                continue
            calls += 1
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant)
                       and k.value.value is True for k in node.keywords)
            if not safe:
                unsafe.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert calls >= 3  # the model, checkpoint and split loaders: the search does find them
    assert not unsafe, "torch.load without weights_only=True:\n" + "\n".join(unsafe)


def test_no_rule_pastes_config_values_into_a_shell_command():
    """Every rule runs a Python script (values travel in the snakemake object), or nothing."""
    files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    rules: dict[str, set[str]] = {}
    for path in files:
        text = path.read_text()
        # anywhere, even in a rule nested in an `if`: a shell directive or a shell() call
        assert not re.search(r"^\s*shell\s*:|\bshell\s*\(", text, flags=re.MULTILINE), path
        for block in re.split(r"^(?=[ \t]*(?:rule|checkpoint) \w+:)", text, flags=re.MULTILINE)[1:]:
            name = re.match(r"[ \t]*(?:rule|checkpoint) (\w+):", block).group(1)
            rules[name] = set(re.findall(r"^\s+(\w+):", block, flags=re.MULTILINE))
    assert {"train", "evaluate", "download_archive"} <= set(rules)  # the parse found the rules
    for name, directives in rules.items():
        assert not directives & {"shell", "run", "wrapper", "notebook", "cwl"}, name
        assert "script" in directives or "output" not in directives, (
            f"rule {name} makes outputs without a script")
