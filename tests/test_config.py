import copy

import pytest
import yaml

from robustarch.config import (
    ConfigError,
    attack_settings,
    parse_budget,
    training_settings,
    validate_config,
)
from robustarch.data import list_datasets
from robustarch.models.catalog import list_models


def _validate(config, schema, **kw):
    return validate_config(config, schema, **kw)  # the registered datasets


def test_paper_config_is_valid_and_resolves_the_protocol(paper_config, schema):
    config = _validate(paper_config, schema)
    assert config["training"]["epochs"] == 100
    assert config["evaluation"]["num_samples"] is None  # default filled in
    pgd = attack_settings(config, "pgd_linf", "cifar10")
    assert pgd.eps == pytest.approx(8 / 255)
    assert pgd.step_size == pytest.approx(0.6 / 255)  # 3/40 of eps, the authors' setting
    l2 = attack_settings(config, "pgd_l2", "cifar10")
    assert l2.step_size == pytest.approx(0.1125)
    l1 = attack_settings(config, "pgd_l1", "imagenette")
    assert l1.eps == 1600 and l1.steps == 20
    train = training_settings(config, "cifar10", "resnet", "pgd_linf")
    assert train.adversary.step_size == pytest.approx(0.8 / 255)
    assert train.adversary.steps == 15 and train.image_size == 32


def test_demo_config_layers_on_paper_config(paper_config, schema, repo):
    demo = yaml.safe_load((repo / "profiles/demo/config.yaml").read_text())
    merged = copy.deepcopy(paper_config)

    def merge(base, over):
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value

    merge(merged, demo)
    config = _validate(merged, schema)
    assert config["run"]["datasets"] == ["digits"] and config["scale"] == "tiny"


@pytest.mark.parametrize("value,expected", [("8/255", 8 / 255), (" 0.8 / 255 ", 0.8 / 255),
                                            (1.5, 1.5), (40, 40.0)])
def test_parse_budget(value, expected):
    assert parse_budget(value) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["8//255", "eight", "1/0", True])
def test_parse_budget_rejects(value):
    with pytest.raises(ConfigError):
        parse_budget(value)


def test_typo_key_names_key_and_suggests(paper_config, schema):
    config = copy.deepcopy(paper_config)
    config["training"]["epoch"] = 3
    with pytest.raises(ConfigError, match=r"'training\.epoch'.*did you mean 'epochs'"):
        _validate(config, schema)


def test_bad_value_names_key_value_and_allowed(paper_config, schema):
    config = copy.deepcopy(paper_config)
    config["scale"] = "huge"
    config["attacks"]["pgd_l2"]["eps"] = {"cifar10": "1/x"}
    with pytest.raises(ConfigError) as info:
        _validate(config, schema)
    message = str(info.value)
    assert "'scale': 'huge' is not one of ['paper', 'tiny']" in message
    assert "'attacks.pgd_l2.eps.cifar10': '1/x'" in message


def test_unknown_architecture_lists_valid_names(paper_config, schema):
    config = copy.deepcopy(paper_config)
    config["run"]["architectures"] = ["resnet", "resnet9000"]
    expected = r"unknown architecture 'resnet9000'; valid .*: resnet, vit"
    with pytest.raises(ConfigError, match=expected):
        _validate(config, schema, known_architectures=["resnet", "vit"])


def test_unknown_attack_and_dataset(paper_config, schema):
    config = copy.deepcopy(paper_config)
    config["run"]["attacks"]["pgd_linf"] = ["pgd_linf", "cw_l2"]
    config["run"]["datasets"] = ["cifar10", "mnist"]
    with pytest.raises(ConfigError) as info:
        _validate(config, schema)
    message = str(info.value)
    assert "unknown attack 'cw_l2'" in message
    registered = ", ".join(list_datasets())
    assert (f"config key 'run.datasets': unknown dataset 'mnist'; registered datasets are: "
            f"{registered}. Add one as a module of robustarch/data/datasets/" in message)


@pytest.mark.parametrize("key", ["datasets", "report.table1_dataset", "attacks.pgd_l2.eps",
                                 "studies.trades.dataset", "studies.corruptions.datasets",
                                 "analysis.dataset"])
def test_an_unregistered_dataset_anywhere_is_named(paper_config, schema, key):
    config = copy.deepcopy(paper_config)
    section = config
    *parents, last = key.split(".")
    for name in parents:
        section = section[name]
    if last == "datasets" and parents:
        section[last] = ["cifar10", "mnist"]
    elif last in ("datasets", "eps"):
        section[last] = {"mnist": {"image_size": 28} if last == "datasets" else 0.3}
    else:
        section[last] = "mnist"
    with pytest.raises(ConfigError) as info:
        _validate(config, schema)
    assert f"config key '{key}': unknown dataset 'mnist'; registered datasets are: " in str(
        info.value)


def test_dataset_facts_come_from_the_modules_and_overrides_merge(paper_config, schema):
    from robustarch.data import dataset_spec

    config = copy.deepcopy(paper_config)
    config["datasets"] = {"cifar10": {"augment": {"autoaugment": None}, "image_size": 64}}
    config["attacks"]["pgd_l2"]["eps"] = {"imagenette": 4.0}
    resolved = _validate(config, schema)
    assert resolved["datasets"]["cifar10"] == {
        "image_size": 64, "num_classes": 10, "mean": [0.4914, 0.4822, 0.4465],
        "std": [0.2023, 0.1994, 0.2010],
        "augment": {"crop": "crop_flip", "autoaugment": None, "autoaugment_impl": "authors"}}
    facts = dataset_spec("imagenette").config_facts()
    facts["augment"]["autoaugment_impl"] = "authors"  # the schema's default, filled in
    assert resolved["datasets"]["imagenette"] == facts
    assert attack_settings(resolved, "pgd_l2", "imagenette").eps == 4.0  # the override
    assert attack_settings(resolved, "pgd_l2", "cifar10").eps == 1.5  # the module's
    budget = dataset_spec("imagenette").budgets["l1"]
    assert attack_settings(resolved, "pgd_l1", "imagenette").eps == budget
    train = training_settings(resolved, "cifar10", "resnet", "vanilla")
    assert train.image_size == 64 and train.augment.autoaugment is None
    assert train.augment.crop == "crop_flip"


def test_an_override_is_checked_like_any_key(paper_config, schema):
    config = copy.deepcopy(paper_config)
    config["datasets"] = {"cifar10": {"mean": [0.5, 0.5]}, "digits": {"crop": "flip"}}
    with pytest.raises(ConfigError) as info:
        _validate(config, schema)
    message = str(info.value)
    assert "'datasets.cifar10.mean'" in message
    assert "'datasets.digits.crop' is not a valid key" in message


def test_a_dataset_without_a_budget_for_the_norm_needs_one_in_the_config(paper_config, schema):
    import dataclasses

    from robustarch.data import registered_datasets

    datasets = dict(registered_datasets())
    datasets["cifar10"] = dataclasses.replace(datasets["cifar10"], budgets={"linf": "8/255"})
    config = copy.deepcopy(paper_config)
    config["run"]["strong_attacks"] = []  # the apgd attacks are not evaluated then
    with pytest.raises(ConfigError) as info:
        _validate(config, schema, known_datasets=datasets)
    message = str(info.value)
    assert ("config key 'attacks.pgd_l1.eps': no budget for dataset 'cifar10'; add "
            "'attacks.pgd_l1.eps.cifar10'" in message)
    assert "'attacks.pgd_l2.eps': no budget for dataset 'cifar10'" in message
    assert "'attacks.pgd_linf.eps'" not in message
    assert "'attacks.apgd_l1.eps'" not in message  # not evaluated by the run
    config["attacks"]["pgd_l1"]["eps"] = {"cifar10": 12}
    config["attacks"]["pgd_l2"]["eps"] = {"cifar10": 0.5}
    resolved = _validate(config, schema, known_datasets=datasets)
    assert attack_settings(resolved, "pgd_l1", "cifar10").eps == 12.0


def test_cifar100_needs_no_config_entries(paper_config, schema):
    config = copy.deepcopy(paper_config)
    config["run"]["datasets"] = ["cifar100"]
    config["report"]["table1_dataset"] = "cifar100"
    resolved = _validate(config, schema)
    assert resolved["analysis"]["dataset"] == "cifar100"
    train = training_settings(resolved, "cifar100", "resnet", "pgd_linf")
    assert train.num_classes == 100 and train.image_size == 32
    assert train.mean == (0.5071, 0.4865, 0.4409) and train.std == (0.2673, 0.2564, 0.2762)
    assert train.augment == training_settings(resolved, "cifar10", "resnet", "pgd_linf").augment
    for attack in resolved["attacks"]:  # CIFAR-10's budgets
        assert attack_settings(resolved, attack, "cifar100") == attack_settings(
            resolved, attack, "cifar10")


@pytest.mark.parametrize("change, message", [
    ({"algorithm": "foolbox", "norm": "l1"}, "attacks.x.algorithm': foolbox has no l1 PGD"),
    ({"algorithm": "art_1_16", "norm": "linf"}, "art_1_16 has no linf PGD"),
    ({"algorithm": "foolbox", "early_stop": True},
     "attacks.x.early_stop': only algorithm robustarch stops early"),
])
def test_pgd_algorithms_refuse_what_they_do_not_implement(paper_config, schema, change,
                                                          message):
    config = copy.deepcopy(paper_config)
    config["attacks"]["x"] = {"kind": "pgd", "norm": "linf", **change}
    config["run"]["strong_attacks"] = ["x"]
    with pytest.raises(ConfigError, match=message):
        _validate(config, schema)


def test_the_two_protocols_resolve_to_their_algorithms(paper_config, schema):
    from robustarch.settings import PGDAlgorithm

    config = _validate(paper_config, schema)
    algorithms = {name: attack_settings(config, name, "cifar10").algorithm
                  for name in ("pgd_linf", "pgd_l2", "pgd_l1", "pgd_linf_es", "pgd_l1_sparse")}
    assert algorithms == {"pgd_linf": PGDAlgorithm.FOOLBOX, "pgd_l2": PGDAlgorithm.FOOLBOX,
                          "pgd_l1": PGDAlgorithm.ART_1_16,
                          "pgd_linf_es": PGDAlgorithm.ROBUSTARCH,
                          "pgd_l1_sparse": PGDAlgorithm.ROBUSTARCH}
    assert not attack_settings(config, "pgd_linf", "cifar10").early_stop  # the last iterate
    assert attack_settings(config, "pgd_linf_es", "cifar10").early_stop
    l1 = attack_settings(config, "pgd_l1", "cifar10")
    assert l1.step_size == pytest.approx(1.5 * 40 / 20)  # the authors' eps_step


def test_epochs_by_architecture_overrides_by_name_then_family(paper_config, schema):
    config = copy.deepcopy(paper_config)
    config["training"]["epochs_by_architecture"] = {"vit": 8, "vit-p2": 3}
    resolved = _validate(config, schema, known_architectures=list_models())
    epochs = {a: training_settings(resolved, "cifar10", a, "vanilla").epochs
              for a in ("vit", "vit-p8", "vit-relu", "vit-p2", "resnet")}
    assert epochs == {"vit": 8, "vit-p8": 8, "vit-relu": 8, "vit-p2": 3, "resnet": 100}
    config["training"]["epochs_by_architecture"] = {"vitt": 8}
    with pytest.raises(ConfigError, match="training.epochs_by_architecture.*unknown architecture"):
        _validate(config, schema, known_architectures=list_models())
