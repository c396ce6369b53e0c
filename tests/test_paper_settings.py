"""docs/paper-settings.md and the presets agree: every value its table states for paper.yaml, fast.yaml and
demo.yaml is the value the preset loads, and the table covers the schedule, every training loss weight and
every refinement term."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hold.config import load_config
from hold.config.refine import RefineLossConfig
from hold.config.system import LossConfig

TABLE = Path(__file__).resolve().parents[1] / "docs" / "paper-settings.md"
PRESETS = ("paper", "fast", "demo")
COLUMNS = ("setting", "key", "HOLD paper", "HOLD released code", "paper.yaml", "fast.yaml", "demo.yaml")


def table_rows() -> list[dict[str, str]]:
    """The rows of the settings table, as {column: cell text}."""
    lines = [line for line in TABLE.read_text().splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert tuple(header) == COLUMNS, header
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == len(COLUMNS), line
        rows.append(dict(zip(COLUMNS, cells)))
    return rows


def keys_of(row: dict[str, str]) -> list[str]:
    """The config keys a row states (none for a row about behaviour that no key selects)."""
    return re.findall(r"`([a-z_0-9.]+)`", row["key"])


def stated_value(cell: str) -> Any:
    """The value a preset cell states: its first `code` span, read as YAML."""
    match = re.search(r"`([^`]+)`", cell)
    assert match, f"no value in {cell!r}"
    return yaml.safe_load(match.group(1))


def config_value(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return list(cfg) if isinstance(cfg, tuple) else cfg


def same(stated: Any, loaded: Any) -> bool:
    """Equal values; numbers within rounding (the table writes 1.0e-4 where the preset loads 0.0001)."""
    if isinstance(loaded, (bool, str)):
        return type(stated) is type(loaded) and stated == loaded
    if isinstance(loaded, list):
        return isinstance(stated, list) and len(stated) == len(loaded) and all(map(same, stated, loaded))
    number = isinstance(stated, (int, float)) and not isinstance(stated, bool)
    return number and stated == pytest.approx(loaded, rel=1e-9)


ROWS = [row for row in table_rows() if keys_of(row)]


@pytest.fixture(scope="module")
def presets():
    return {name: load_config(name) for name in PRESETS}


@pytest.mark.parametrize("row", ROWS, ids=[r["setting"] for r in ROWS])
def test_table_states_what_each_preset_loads(row, presets):
    for name in PRESETS:
        stated = stated_value(row[f"{name}.yaml"])
        for key in keys_of(row):
            loaded = config_value(presets[name], key)
            assert same(stated, loaded), (
                f"{key} in {name}.yaml: the table says {stated!r}, the preset loads {loaded!r}"
            )


def test_table_covers_schedule_loss_weights_and_refinement_terms():
    covered = {key for row in ROWS for key in keys_of(row)}
    required = {"train.stage1_steps", "train.stage3_steps", "rays.frames_per_step", "rays.rays_per_frame"}
    required |= {f"loss.{f.name}" for f in dataclasses.fields(LossConfig)}
    required |= {f"refine.loss.{f.name}" for f in dataclasses.fields(RefineLossConfig)}
    required |= {"refine.contact_per", "refine.contact_robust_distance", "refine.contact_regions"}
    assert required <= covered, sorted(required - covered)


def test_every_stated_key_exists(presets):
    for row in ROWS:
        for key in keys_of(row):
            config_value(presets["paper"], key)  # AttributeError names a key the table invented
