from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hold.config import ConfigError, HoldConfig, list_presets, load_config, save_config


def test_presets_exist_and_load():
    assert {"paper", "fast", "demo"} <= set(list_presets())
    for name in list_presets():
        cfg = load_config(name)
        assert isinstance(cfg, HoldConfig) and cfg.name == name


def test_extends_merges_child_over_parent():
    assert load_config("demo").logging.log_every_steps == 5
    assert load_config("paper").logging.log_every_steps == HoldConfig().logging.log_every_steps


def test_overrides_are_typed():
    cfg = load_config("demo", ["seed=7", "hand.model=mano", "hand.mano_dir=/x", "logging.wandb=disabled"])
    assert cfg.seed == 7 and cfg.hand.model == "mano" and cfg.hand.mano_dir == "/x"
    assert cfg.logging.wandb == "disabled"


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as info:
        load_config("demo", ["hand.modle=mano"])
    message = str(info.value)
    assert "'hand.modle'" in message and "model" in message and "mano_dir" in message


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match="valid keys at the top level: name, seed, hand, .*logging"):
        load_config("demo", ["sed=1"])


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("seed=abc", "seed: expected an integer"),
        ("seed=1.5", "seed: expected an integer"),
        ("hand.model=smpl", "hand.model: 'smpl' is not one of"),
        ("logging.wandb=yes", "logging.wandb"),
        ("hand=3", "hand: expected a mapping"),
        ("seed", "not of the form key=value"),
    ],
)
def test_bad_values(override: str, fragment: str):
    with pytest.raises(ConfigError, match=fragment):
        load_config("demo", [override])


def test_yaml_file_and_unknown_preset(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: demo\nseed: 11\n")
    assert load_config(str(path)).seed == 11
    with pytest.raises(ConfigError, match="unknown config preset 'nope'"):
        load_config("nope")
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(str(tmp_path / "loop.yaml"))


def test_saved_config_reloads_identically(tmp_path: Path):
    cfg = load_config("demo", ["seed=3"])
    save_config(cfg, tmp_path / "config.yaml")
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert data["seed"] == 3 and data["hand"]["model"] == "anny"
    assert load_config(str(tmp_path / "config.yaml")) == cfg


def test_component_checks_become_config_errors():
    with pytest.raises(ConfigError, match=r"model.object.sdf.*skip_layers"):
        load_config("demo", ["model.object.sdf.skip_layers=[9]"])


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.stage1_steps=-1", "train: stage1_steps must be ≥ 1"),
        ("train.stage1_steps=0", "train: stage1_steps must be ≥ 1"),
        ("rays.rays_per_frame=0", "rays: rays_per_frame must be ≥ 1"),
        ("rays.box_fraction=1.5", "rays: box_fraction must lie in [0, 1]"),
        ("optim.lr=.nan", "optim.lr: expected a finite number"),
        ("optim.lr=nan", "optim.lr: expected a finite number"),
        ("optim.lr=.inf", "optim.lr: expected a finite number"),
        ("train.mesh_every=-3", "train: mesh_every must be ≥ 0"),
    ],
)
def test_numbers_out_of_range_are_refused_at_load(override: str, key: str):
    with pytest.raises(ConfigError) as e:
        load_config("demo", [override])
    assert key in str(e.value)


def test_a_bad_config_is_refused_before_the_run_dir_exists(tiny_synthetic, tmp_path, capsys):
    from hold.cli import train_main

    run = tmp_path / "run"
    assert train_main([str(tiny_synthetic.oracle_dir), "--out", str(run), "train.stage1_steps=-5"]) == 2
    assert "stage1_steps must be ≥ 1" in capsys.readouterr().err and not run.exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("loss.sparsity=[0,1,2]", "sparsity: a ramp is"),
        ("loss.rgb=-1", "rgb: a loss weight must be ≥ 0"),
        ("loss.hand_prior=[300,0,5,200]", "hand_prior: a ramp needs 0 ≤ start_step ≤ end_step"),
        ("loss.segmentation=[0,-1,0.1,100]", "segmentation: a ramp's weights must be ≥ 0"),
    ],
)
def test_loss_ramps_are_checked_when_the_config_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("demo", [override])
