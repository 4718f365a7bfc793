import math

import pytest
import torch
from conftest import tiny_settings

from robustarch.attacks import trades_perturb
from robustarch.config import ConfigError, l1_method, parse_method
from robustarch.models import create_model
from robustarch.settings import as_dict
from robustarch.train import (
    Fingerprint,
    GradientRecord,
    NonFiniteLossError,
    epoch_lr_factor,
    l1_penalty,
    list_checkpoints,
    lr_factor,
    run_fingerprint,
    trades_loss,
    train_model,
)
from robustarch.train.schedule import Schedule


def _model(arch="resnet", seed=0):
    torch.manual_seed(seed)
    return create_model(arch, 10, 32, "tiny", [0.3054] * 3, [0.3237] * 3)


def _subset(digits, n_train=256, n_test=100):
    return ((digits["x_train"][:n_train], digits["y_train"][:n_train]),
            (digits["x_test"][:n_test], digits["y_test"][:n_test]))


class GradualWarmupReference(torch.optim.lr_scheduler.LRScheduler):
    """The authors' warm-up: ildoonet/pytorch-gradual-warmup-lr's ``GradualWarmupScheduler``,
    written here from that code's semantics for multiplier 1 with an ``after_scheduler`` (the
    authors' call). Their requirements.txt installs the repository's master
    (git+https://github.com/ildoonet/pytorch-gradual-warmup-lr.git, v0.3.2), whose scheduler
    returns ``after_scheduler.get_last_lr()`` at the hand-over. The PyPI package
    ``warmup-scheduler`` is an older snapshot (0.3, Jan-Apr 2020) that returns
    ``after_scheduler.get_lr()`` there instead: under today's torch that gives epoch W + 2 a
    lr above the base lr (0.6 % at 20 epochs), so it is not the code the authors ran and is not
    used as the reference (nor pinned).

    - ``last_epoch <= total_epoch``: lr = base * last_epoch / total_epoch (0 at construction);
    - the first step past it hands over: the after-scheduler's base lrs become the base lrs and
      the lr is the after-scheduler's last lr (the base lr, from its construction);
    - every later step steps the after-scheduler.
    """

    def __init__(self, optimizer, total_epoch, after_scheduler):
        self.total_epoch, self.after, self.finished = total_epoch, after_scheduler, False
        super().__init__(optimizer)

    def get_lr(self):
        if self.last_epoch > self.total_epoch:
            if not self.finished:
                self.after.base_lrs = list(self.base_lrs)
                self.finished = True
            return self.after.get_last_lr()
        return [base * self.last_epoch / self.total_epoch for base in self.base_lrs]

    def step(self):
        if self.finished:
            self.after.step()
            self._last_lr = self.after.get_last_lr()
        else:
            super().step()


def authors_lrs(*, lr, min_lr, epochs, warmup_epochs):
    """The lr of each epoch under the authors' train.py: AdamW, CosineAnnealingLR(T_max=epochs,
    eta_min=min_lr) built first, wrapped in the warm-up, ``scheduler.step()`` after each epoch."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=lr, weight_decay=0.01)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=min_lr)
    if warmup_epochs:  # total_epoch=0 divides by zero in their scheduler: the cosine alone
        scheduler = GradualWarmupReference(optimizer, warmup_epochs, cosine)
    else:
        scheduler = cosine
    lrs = []
    for _ in range(epochs):
        optimizer.step()  # (the epoch's batches)
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    return lrs


def schedule_lrs(settings, steps_per_epoch=3):
    """The lr of each epoch under our Schedule, stepped as the training loop steps it."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=settings.lr, weight_decay=0.01)
    schedule = Schedule(optimizer, settings, steps_per_epoch)
    lrs = []
    for _ in range(settings.epochs):
        for _ in range(steps_per_epoch):
            optimizer.step()
            schedule.batch_done()
        lrs.append(optimizer.param_groups[0]["lr"])
        schedule.epoch_done()
    return lrs


@pytest.mark.parametrize("epochs, warmup_epochs", [(100, 8), (20, 8), (3, 1), (5, 0), (9, 8)])
def test_per_epoch_schedule_equals_gradual_warmup_then_cosine(epochs, warmup_epochs):
    settings = tiny_settings(epochs=epochs, warmup_epochs=warmup_epochs, lr=1e-4, min_lr=5e-6,
                             schedule="per_epoch")
    ours = schedule_lrs(settings)
    theirs = authors_lrs(lr=1e-4, min_lr=5e-6, epochs=epochs, warmup_epochs=warmup_epochs)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-18)
    if warmup_epochs:
        assert ours[0] == 0.0  # their epoch 1 trains at lr 0
        assert ours[warmup_epochs] == pytest.approx(1e-4)  # epoch W + 1: the full lr
        if epochs > warmup_epochs + 1:
            assert ours[warmup_epochs + 1] == pytest.approx(1e-4)  # epoch W + 2: the cosine's 1
    assert min(ours[warmup_epochs + 1:] or [1]) > 5e-6  # the restarted cosine stops above min_lr
    assert ours == pytest.approx([1e-4 * epoch_lr_factor(e, epochs=epochs,
                                                         warmup_epochs=warmup_epochs,
                                                         min_ratio=0.05) for e in
                                  range(1, epochs + 1)])


def test_per_step_schedule_changes_the_lr_every_batch():
    settings = tiny_settings(epochs=4, warmup_epochs=1, lr=1e-3, min_lr=1e-5, schedule="per_step")
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=settings.lr)
    schedule = Schedule(optimizer, settings, steps_per_epoch=5)
    seen = []
    for _ in range(20):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.batch_done()
        schedule.epoch_done()  # ignored by a per-step schedule
    kw = dict(total_steps=20, warmup_steps=5, min_ratio=0.01)
    assert seen == pytest.approx([1e-3 * lr_factor(s, **kw) for s in range(20)])


def test_lr_schedule_warms_up_then_decays_to_min():
    kw = dict(total_steps=100, warmup_steps=10, min_ratio=0.05)
    values = [lr_factor(s, **kw) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[9:], values[10:], strict=False))
    assert values[-1] == pytest.approx(0.05, abs=1e-3)
    assert lr_factor(10, **kw) == pytest.approx(1.0)
    assert not any(math.isnan(v) for v in values)


@pytest.mark.parametrize("method", ["vanilla", "pgd_linf", "trades", "pgd_linf_l1-1e-05"])
def test_training_learns_and_checkpoints(digits, tmp_path, method):
    train, test = _subset(digits, n_train=512)
    # the per-epoch schedule trains epoch 1 at lr 0 (the authors' warm-up): 4 epochs learn
    settings = tiny_settings(method=method, epochs=5, lr=1e-2)
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train_model(model, train, test, settings, checkpoint_dir=tmp_path,
                         device=torch.device("cpu"), log=lambda m: None)
    assert [r["epoch"] for r in result.metrics] == [1, 2, 3, 4, 5]
    assert [r["lr"] for r in result.metrics] == pytest.approx(
        [1e-2 * epoch_lr_factor(e, epochs=5, warmup_epochs=1, min_ratio=1e-4 / 1e-2)
         for e in range(1, 6)])  # 0, lr, lr, then the cosine
    if method == "vanilla":  # an adversarial loss need not fall while robustness is learnt
        assert result.metrics[-1]["train_loss"] < result.metrics[0]["train_loss"]
    chance = 0.1
    assert result.metrics[-1]["test_clean_acc"] > chance + (0.15 if method == "vanilla" else 0.08)
    assert any(not torch.equal(before[k], v) for k, v in result.state_dict.items())
    assert [p.name for p in list_checkpoints(tmp_path)] == ["epoch-0004.pt", "epoch-0005.pt"]
    assert result.resumed_from is None


def test_adversarial_training_leaves_no_input_gradient_state(digits, tmp_path):
    train, test = _subset(digits, n_train=64, n_test=20)
    model = _model()
    train_model(model, train, test, tiny_settings(method="pgd_linf", epochs=1, batch_size=32),
                checkpoint_dir=tmp_path, device=torch.device("cpu"), log=lambda m: None)
    assert model.training is False  # the last thing done was clean evaluation


# stop_requested is polled after each of the 4 batches of an epoch and once at its end.
@pytest.mark.parametrize("stop_after, resumed_from, message", [
    (2 * 5 + 2, {"epoch": 2, "batch": 2}, "epoch 3: checkpoint written after batch 2"),
    (5 + 4, {"epoch": 2, "batch": None}, "checkpoint of epoch 2"),  # last batch of epoch 2
])
def test_resume_is_bit_identical_to_an_uninterrupted_run(digits, tmp_path, stop_after,
                                                         resumed_from, message):
    train, test = _subset(digits)
    settings = tiny_settings(method="pgd_linf", epochs=3, batch_size=64)
    straight = train_model(_model(), train, test, settings, checkpoint_dir=tmp_path / "a",
                           device=torch.device("cpu"), log=lambda m: None)
    batches = {"n": 0}

    def stop_signal_arrived():
        batches["n"] += 1
        return batches["n"] >= stop_after

    with pytest.raises(InterruptedError, match=message):
        train_model(_model(), train, test, settings, checkpoint_dir=tmp_path / "b",
                    device=torch.device("cpu"), log=lambda m: None,
                    stop_requested=stop_signal_arrived)
    resumed = train_model(_model(seed=99), train, test, settings, checkpoint_dir=tmp_path / "b",
                          device=torch.device("cpu"), log=lambda m: None)
    assert resumed.resumed_from == resumed_from
    untimed = [[{k: v for k, v in row.items() if k != "time_s"} for row in run.metrics]
               for run in (straight, resumed)]
    assert untimed[0] == untimed[1]
    for key, value in straight.state_dict.items():
        assert torch.equal(value, resumed.state_dict[key]), key
    assert straight.untrained.keys() == resumed.untrained.keys()


class _NaNModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x.flatten(1)[:, :10] * self.w * float("nan")


def test_nan_loss_stops_with_a_clear_error(digits, tmp_path):
    train, test = _subset(digits, n_train=64, n_test=10)
    with pytest.raises(NonFiniteLossError, match="loss became nan in epoch 1.*training.lr"):
        train_model(_NaNModel(), train, test, tiny_settings(), checkpoint_dir=tmp_path,
                    device=torch.device("cpu"), log=lambda m: None)


def test_trades_loss_is_cross_entropy_without_perturbation_or_beta():
    torch.manual_seed(0)
    logits, other = torch.randn(8, 10), torch.randn(8, 10)
    y = torch.randint(0, 10, (8,))
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(trades_loss(logits, other, y, beta=0.0), ce)
    assert torch.allclose(trades_loss(logits, logits.clone(), y, beta=6.0), ce, atol=1e-6)
    # KL(p || q) > 0 for q != p, scaled by beta
    gap = trades_loss(logits, other, y, beta=2.0) - ce
    assert gap > 0
    assert torch.allclose(trades_loss(logits, other, y, beta=4.0) - ce, 2 * gap, atol=1e-5)


def test_trades_perturbation_stays_in_the_ball_and_raises_the_kl(digits):
    model = _model().eval()
    x = digits["x_test"][:16].float().div(255)
    eps = 8 / 255
    x_adv = trades_perturb(model, x, eps=eps, steps=3, step_size=2 / 255,
                           generator=torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= eps + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        clean = model(x)
        kl = [torch.nn.functional.kl_div(torch.log_softmax(model(z), 1),
                                         torch.softmax(clean, 1), reduction="sum")
              for z in (x + 0.001 * torch.randn_like(x), x_adv)]
    assert kl[1] > kl[0]


def test_l1_penalty_and_its_gradient():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(2, 3))
    torch.manual_seed(0)
    for p in model.parameters():
        torch.nn.init.normal_(p)
    penalized = [model[0].weight, model[3].weight]  # biases and BatchNorm are not penalized
    expected = sum(p.abs().sum() for p in penalized)
    value = l1_penalty(model)
    assert torch.allclose(value, expected)
    strength = 5e-5
    (strength * value).backward()
    for p in penalized:
        assert torch.equal(p.grad, strength * p.sign())
    for p in (model[0].bias, model[1].weight, model[1].bias, model[3].bias):
        assert p.grad is None


@pytest.mark.parametrize("name, parsed", [
    ("vanilla", ("vanilla", 0.0)), ("trades", ("trades", 0.0)),
    ("pgd_linf_l1-5e-05", ("pgd_linf_l1", 5e-05)), ("pgd_linf_l1-0.001", ("pgd_linf_l1", 1e-3)),
])
def test_method_names(name, parsed):
    assert parse_method(name) == parsed


@pytest.mark.parametrize("name", ["pgd", "pgd_linf_l1-", "pgd_linf_l1-x", "pgd_linf_l1--1"])
def test_bad_method_names_are_refused(name):
    with pytest.raises(ConfigError, match="unknown training method.*pgd_linf_l1-<lambda>"):
        parse_method(name)


def test_l1_method_name_round_trips():
    assert l1_method(0) == "pgd_linf"
    for strength in (1e-6, 5e-6, 1e-5, 5e-5, 0.001):
        assert parse_method(l1_method(strength)) == ("pgd_linf_l1", strength)


def _stopped_after_first_epoch(train, test, settings, folder):
    """A run stopped (as by a preemption signal) right after its epoch-1 checkpoint."""
    first = folder / "epoch-0001.pt"
    with pytest.raises(InterruptedError, match="checkpoint of epoch 1"):
        train_model(_model(), train, test, settings, checkpoint_dir=folder,
                    device=torch.device("cpu"), log=lambda m: None, stop_requested=first.exists)
    return first


@pytest.mark.parametrize("change", ["settings", "data", "code", "no_fingerprint"])
def test_a_checkpoint_of_another_recipe_is_set_aside_not_resumed(digits, tmp_path, change):
    train, test = _subset(digits, n_train=64, n_test=20)
    settings = tiny_settings(epochs=2, batch_size=32)
    fingerprint = run_fingerprint(settings, data="a" * 64)
    first = folder = tmp_path / "checkpoints"
    first = _stopped_after_first_epoch(train, test, settings, folder)
    checkpoint = torch.load(first, weights_only=True)
    assert checkpoint["fingerprint"] == run_fingerprint(settings).as_dict()  # no data digest
    if change == "no_fingerprint":  # written before checkpoints had one
        del checkpoint["fingerprint"]
        torch.save(checkpoint, first)
    rerun_settings, rerun_fingerprint = settings, None
    if change == "settings":
        rerun_settings = tiny_settings(epochs=2, batch_size=32, lr=1e-2, adversary=dict(
            eps=4 / 255, steps=2, step_size=4 / 255, random_start=True))
    elif change == "data":
        rerun_fingerprint = fingerprint
    elif change == "code":
        rerun_fingerprint = Fingerprint(as_dict(settings), None, "0" * 64)
    messages = []
    result = train_model(_model(), train, test, rerun_settings, checkpoint_dir=folder,
                         device=torch.device("cpu"), log=messages.append,
                         fingerprint=rerun_fingerprint)
    assert result.resumed_from is None and [r["epoch"] for r in result.metrics] == [1, 2]
    lines = [m for m in messages if m.startswith("not resuming")]
    suffix = {"settings": "stale-settings", "data": "stale-data", "code": "stale-code",
              "no_fingerprint": "stale-code"}[change]
    assert len(lines) == 1 and f"set aside as epoch-0001.pt.{suffix};" in lines[0]
    assert lines[0].endswith("training starts fresh")
    if change == "settings":
        assert "other settings (adversary.eps: " in lines[0] and "lr: 0.003 -> 0.01" in lines[0]
    assert (folder / f"epoch-0001.pt.{suffix}").exists()
    assert [p.name for p in list_checkpoints(folder)] == ["epoch-0001.pt", "epoch-0002.pt"]
    assert result.fingerprint == (rerun_fingerprint or run_fingerprint(rerun_settings)).digests()


def test_the_same_recipe_resumes_with_the_data_digest_left_out(digits, tmp_path):
    """A direct train_model call (no data digest) compares settings and code only."""
    train, test = _subset(digits, n_train=64, n_test=20)
    settings = tiny_settings(epochs=2, batch_size=32)
    _stopped_after_first_epoch(train, test, settings, tmp_path)
    result = train_model(_model(), train, test, settings, checkpoint_dir=tmp_path,
                         device=torch.device("cpu"), log=lambda m: None)
    assert result.resumed_from == {"epoch": 1, "batch": None}


def test_paper_recipe_is_the_authors(paper_config, schema):
    """config.yaml and the schema defaults: fp32, the per-epoch schedule, the authors' AutoAugment
    (CIFAR-10: AutoAugment then crop + flip; ImageNette: resized crop, no flip)."""
    import copy

    from robustarch.config import training_settings, validate_config
    from robustarch.data.registry import dataset_spec

    known = {name: dataset_spec(name) for name in ("cifar10", "imagenette", "digits")}
    config = validate_config(copy.deepcopy(paper_config), schema, known_datasets=known)
    cifar = training_settings(config, "cifar10", "resnet", "pgd_linf")
    assert (cifar.bf16, cifar.schedule, cifar.warmup_epochs, cifar.min_lr) == (
        False, "per_epoch", 8, 5e-6)
    assert (cifar.augment.crop, cifar.augment.autoaugment, cifar.augment.autoaugment_impl) == (
        "crop_flip", "cifar10", "authors")
    nette = training_settings(config, "imagenette", "resnet", "pgd_linf").augment
    assert (nette.crop, nette.autoaugment, nette.autoaugment_impl) == (
        "resized_crop", "imagenet", "authors")
    bare = copy.deepcopy(paper_config)
    del bare["training"]
    for data in bare["datasets"].values():
        data.pop("augment", None)
    defaults = validate_config(bare, schema, known_datasets=known)
    assert defaults["training"]["bf16"] is False
    assert defaults["training"]["schedule"] == "per_epoch"
    # no dropout or drop-path for any family, in the paper config and by default
    assert defaults["training"]["regularization"] == {"drop_path": 0.0, "dropout": 0.0}
    assert as_dict(cifar.regularization) == {"drop_path": 0.0, "dropout": 0.0}
    assert defaults["datasets"]["cifar10"]["augment"]["autoaugment_impl"] == "authors"


def _imagenette_like(n: int = 128, seed: int = 0):
    """Full frames as ImageNette's training split stores them, scaled down: landscape and
    portrait frames (the portrait ones transposed) on a 24 x 40 canvas with their sizes; class
    = brightness (0: dark, 1: bright), so the crops keep the label. And a 32 px test split."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    sizes = torch.tensor([(24, 40) if i % 3 else (36, 24) for i in range(n)])
    x = torch.zeros(n, 3, 24, 40, dtype=torch.uint8)
    for i, (h, w) in enumerate(sizes.tolist()):
        level = 60 + 120 * int(y[i])
        noise = torch.randint(0, 40, (3, min(h, w), max(h, w)), generator=g, dtype=torch.uint8)
        x[i, :, :min(h, w), :max(h, w)] = noise + level
    test_y = torch.arange(40) % 2
    test_x = (torch.randint(0, 40, (40, 3, 32, 32), generator=g) + 60 + 120 * test_y[:, None,
              None, None]).to(torch.uint8)
    return (x, y, sizes), (test_x, test_y)


FRAME_AUGMENT = dict(crop="resized_crop", autoaugment="imagenet", autoaugment_impl="authors")


def test_training_on_full_frames_crops_them_and_learns(tmp_path):
    """ImageNette's recipe on full frames: RandomResizedCrop over each whole frame (its sizes
    from the split), then AutoAugment, no flip."""
    train, test = _imagenette_like()
    settings = tiny_settings(epochs=4, lr=1e-2, batch_size=32, augment=FRAME_AUGMENT)
    result = train_model(_model(), train, test, settings, checkpoint_dir=tmp_path,
                         device=torch.device("cpu"), log=lambda m: None)
    assert [r["epoch"] for r in result.metrics] == [1, 2, 3, 4]
    assert all(math.isfinite(r["train_loss"]) for r in result.metrics)
    assert result.metrics[-1]["test_clean_acc"] > 0.8  # brightness survives crop + AutoAugment


def test_training_job_records_the_regularization_and_evaluation_rebuilds_it(tmp_path):
    """The job builds the model with training.regularization and reads full-frame splits;
    model.pt records the rates; load_trained_model rebuilds that model."""
    from robustarch.data.splits import save_split
    from robustarch.evaluate.loading import load_trained_model
    from robustarch.train.job import run_training_job

    (x, y, sizes), (test_x, test_y) = _imagenette_like(n=64)
    save_split(tmp_path / "train.pt", x, y, sizes)
    save_split(tmp_path / "test.pt", test_x, test_y)
    settings = tiny_settings(arch="vit", epochs=1, batch_size=32, augment=FRAME_AUGMENT,
                             regularization=dict(drop_path=0.2, dropout=0.1))
    logs = []
    run_training_job(train=tmp_path / "train.pt", test=tmp_path / "test.pt", settings=settings,
                     model_path=tmp_path / "model.pt", metrics_path=tmp_path / "metrics.csv",
                     checkpoint_dir=tmp_path / "ckpt", log=logs.append)
    assert "drop-path 0.2, dropout 0.1" in logs[0]
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved["regularization"] == {"drop_path": 0.2, "dropout": 0.1}
    model, meta = load_trained_model(tmp_path / "model.pt")
    drop_paths = [m.drop_prob for m in model.modules() if hasattr(m, "drop_prob")]
    dropouts = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert max(drop_paths) == pytest.approx(0.2) and set(dropouts) == {0.1}
    assert not model.training and meta["regularization"] == saved["regularization"]
    # A model file from before the key: rebuilt without regularization, same weights.
    del saved["regularization"]
    torch.save(saved, tmp_path / "old.pt")
    old, _ = load_trained_model(tmp_path / "old.pt")
    assert all(m.drop_prob == 0 for m in old.modules() if hasattr(m, "drop_prob"))
    x_test = test_x[:4].float() / 255
    with torch.no_grad():
        assert torch.equal(old(x_test), model(x_test))


# ---------------------------------------------------------------------- untrained weights


def _random_split(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
            torch.randint(0, 10, (n,), generator=g))


def _expected_coatnet_untrained(model):
    """CoAtNet at 32 px: the last stage's grid is 1x1, so its attention has one token to attend
    to; softmax over one logit is 1 whatever the logit, so the query and key rows of its fused
    ``to_qkv`` (the first two thirds of the output features: q, k, v) and its one relative-bias
    entry per head get exactly zero gradient. Nothing else does (the stages before attend over
    2x2 or more, or are convolutions on 2x2 or more)."""
    stage = model.net.stages[-1]
    assert model.net.layout[-1] == "T" and stage[0].attn.grid == 1
    expected = {}
    for i, block in enumerate(stage):
        qkv = block.attn.to_qkv.weight
        rows = torch.zeros_like(qkv, dtype=torch.bool)
        rows[: 2 * qkv.shape[0] // 3] = True
        prefix = f"net.stages.{len(model.net.stages) - 1}.{i}.attn"
        expected[f"{prefix}.to_qkv.weight"] = rows
        expected[f"{prefix}.rel_bias"] = torch.ones_like(block.attn.rel_bias, dtype=torch.bool)
    return expected


def test_coatnet_at_32px_leaves_its_last_stage_queries_and_keys_untrained(tmp_path):
    """The gradient record finds exactly the elements the architecture leaves without gradient,
    and those moved only by AdamW's decoupled weight decay."""
    model = _model("coatnet")
    initial = {k: v.detach().clone() for k, v in model.named_parameters()}
    expected = _expected_coatnet_untrained(model)
    settings = tiny_settings(arch="coatnet", epochs=2, batch_size=16, warmup_epochs=0,
                             lr=1e-2)
    train = _random_split(64)
    result = train_model(model, train, _random_split(16, seed=1), settings,
                         checkpoint_dir=tmp_path, device=torch.device("cpu"), log=lambda m: None)
    assert result.untrained.keys() == expected.keys()
    for name, mask in expected.items():
        assert torch.equal(result.untrained[name], mask), name
    assert result.parameter_elements == sum(p.numel() for p in model.parameters())
    # untrained elements: only the weight decay, w0 * prod(1 - lr * wd) over the steps
    for name, mask in expected.items():
        decayed = initial[name].clone()
        for row in result.metrics:
            for _ in range(len(train[1]) // settings.batch_size):
                decayed.mul_(1 - row["lr"] * settings.weight_decay)
        final = result.state_dict[name]
        assert torch.allclose(final[mask], decayed[mask], rtol=1e-6, atol=0), name
        if not mask.all():  # to_qkv's value rows trained
            assert not torch.allclose(final[~mask], decayed[~mask], rtol=1e-3), name


def test_gradient_record_ors_elementwise_and_round_trips():
    model = torch.nn.Linear(3, 2)
    record = GradientRecord(model)
    grads = [torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),  # update 1 (then a sync)
             torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),  # 2 (sync)
             torch.tensor([[0.0, -1e-30, 0.0], [0.0, 0.0, 0.0]]),  # 3
             torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]])]  # 4 (sync)
    for grad in grads:
        model.weight.grad = grad
        model.bias.grad = torch.ones(2)
        record.update()
    assert record.untrained().keys() == {"weight"}
    assert record.untrained()["weight"].tolist() == [[True, False, True], [True, True, False]]
    model.weight.grad = None  # a parameter without gradient in a pass stays as it is
    record.update()
    copy = GradientRecord(model)
    copy.load_state_dict(record.state_dict())
    assert copy.untrained().keys() == {"weight"}
    assert torch.equal(copy.untrained()["weight"], record.untrained()["weight"])
    model.weight.grad = torch.ones(2, 3)
    copy.update()
    assert copy.untrained() == {}
    with pytest.raises(ValueError, match="other parameters"):
        GradientRecord(torch.nn.Linear(3, 2, bias=False)).load_state_dict(record.state_dict())


def test_the_gradient_record_survives_a_mid_epoch_resume(tmp_path):
    settings = tiny_settings(arch="coatnet", epochs=2, batch_size=16)
    train, test = _random_split(64), _random_split(16, seed=1)
    straight = train_model(_model("coatnet"), train, test, settings,
                           checkpoint_dir=tmp_path / "a", device=torch.device("cpu"),
                           log=lambda m: None)
    calls = {"n": 0}

    def stop_after_two_batches():
        calls["n"] += 1
        return calls["n"] >= 2

    with pytest.raises(InterruptedError, match="after batch 2"):
        train_model(_model("coatnet"), train, test, settings, checkpoint_dir=tmp_path / "b",
                    device=torch.device("cpu"), log=lambda m: None,
                    stop_requested=stop_after_two_batches)
    checkpoint = torch.load(list_checkpoints(tmp_path / "b")[-1], weights_only=True)
    assert not checkpoint["gradients_seen"]["net.stages.3.0.attn.rel_bias"].any()
    resumed = train_model(_model("coatnet", seed=99), train, test, settings,
                          checkpoint_dir=tmp_path / "b", device=torch.device("cpu"),
                          log=lambda m: None)
    assert resumed.resumed_from == {"epoch": 0, "batch": 2}
    assert straight.untrained.keys() == resumed.untrained.keys() == set(
        _expected_coatnet_untrained(_model("coatnet")))
    for name, mask in straight.untrained.items():
        assert torch.equal(mask, resumed.untrained[name]), name
    for key, value in straight.state_dict.items():
        assert torch.equal(value, resumed.state_dict[key]), key


def test_model_file_records_the_untrained_elements(tmp_path):
    """model.pt keeps the masks (weights-only loadable) and their counts; the loader exposes
    them; a file from before the record reads as unknown; a damaged record is refused."""
    from robustarch.errors import CorruptFileError
    from robustarch.evaluate.loading import load_trained_model
    from robustarch.train import TrainResult, save_trained_model

    model = _model("coatnet")
    untrained = _expected_coatnet_untrained(model)
    total = sum(p.numel() for p in model.parameters())
    result = TrainResult(state_dict=model.state_dict(), metrics=[], selected_epoch=1,
                         resumed_from=None, untrained=untrained, parameter_elements=total)
    settings = tiny_settings(arch="coatnet")
    save_trained_model(tmp_path / "model.pt", result, settings)
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved["untrained_summary"] == {
        "parameters": 2, "elements": sum(int(m.sum()) for m in untrained.values()),
        "parameter_elements": total}
    _, meta = load_trained_model(tmp_path / "model.pt")
    assert meta["untrained_known"] is True and meta["untrained"].keys() == untrained.keys()
    for name, mask in untrained.items():
        assert torch.equal(meta["untrained"][name], mask)
    for key in ("untrained", "untrained_summary"):
        del saved[key]
    torch.save(saved, tmp_path / "old.pt")
    _, meta = load_trained_model(tmp_path / "old.pt")
    assert meta["untrained"] is None and meta["untrained_known"] is False
    saved["untrained"] = {"net.head.weight": torch.ones(3, dtype=torch.bool)}
    torch.save(saved, tmp_path / "bad.pt")
    with pytest.raises(CorruptFileError, match="net.head.weight"):
        load_trained_model(tmp_path / "bad.pt")
