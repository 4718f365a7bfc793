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

DATASETS = ["cifar10", "imagenette", "digits"]


def _validate(config, schema, **kw):
    return validate_config(config, schema, known_datasets=DATASETS, **kw)


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
    config["attacks"]["pgd_l2"]["eps"]["cifar10"] = "1/x"
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


def test_unknown_attack_and_dataset_and_missing_budget(paper_config, schema):
    config = copy.deepcopy(paper_config)
    config["run"]["attacks"]["pgd_linf"] = ["pgd_linf", "cw_l2"]
    config["run"]["datasets"] = ["cifar10", "mnist"]
    config["attacks"]["pgd_l1"]["eps"].pop("cifar10")
    with pytest.raises(ConfigError) as info:
        _validate(config, schema)
    message = str(info.value)
    assert "unknown attack 'cw_l2'" in message
    assert "unknown dataset 'mnist'; valid datasets: cifar10, digits, imagenette" in message
    assert "'attacks.pgd_l1.eps': no budget for dataset 'cifar10'" in message
