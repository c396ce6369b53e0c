"""Suite files: which clips, with which generator settings, and the named subsets.

A suite file is YAML::

    name: v1
    version: 1
    about: what the suite stands for
    defaults:                       # generator settings every clip starts from
      synth_preset: demo
      synth: {image_size: [240, 320]}
    subsets:
      quick: [clip_a, clip_b]
    clips:
      - name: clip_a
        seed: 1
        about: why this clip is in the suite
        synth: {object: bottle, texture_level: low, noise: realistic}

A clip's ``synth`` mapping is merged over ``defaults.synth`` (nested mappings key by key) and handed to
``hold.data.synthetic.presets.make_config``; every clip is checked when the file loads, so a mistyped
setting fails before hours of running, not in the middle.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hold.config import PRESETS_DIR
from hold.data.synthetic.config import SynthConfig
from hold.data.synthetic.presets import make_config

SUITES_DIR = PRESETS_DIR / "suites"
"""Where the suites shipped with the project live (``configs/suites/NAME.yaml``)."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_SUITE_KEYS = {"name", "version", "about", "defaults", "subsets", "clips"}
_DEFAULT_KEYS = {"synth_preset", "synth"}
_CLIP_KEYS = {"name", "seed", "about", "synth"}


class SuiteSpecError(ValueError):
    """A suite file is malformed; the message names the file, the clip and the field."""


@dataclass(frozen=True)
class ClipSpec:
    """One clip of a suite.

    Attributes:
        name: unique within the suite; also its folder name under the suite's output dir.
        seed: seed of the generator.
        synth_preset: generator preset the settings start from (``tiny`` or ``demo``).
        synth: generator settings over the preset (defaults merged with the clip's own).
        about: why the clip is in the suite.
    """

    name: str
    seed: int
    synth_preset: str
    synth: dict[str, Any]
    about: str = ""

    def synth_config(self) -> SynthConfig:
        """The generator config of this clip."""
        return make_config(self.synth_preset, **copy.deepcopy(self.synth))

    def fingerprint(self) -> str:
        """Hash of everything that shapes the clip's frames (a change means a different clip)."""
        blob = json.dumps(
            {"seed": self.seed, "preset": self.synth_preset, "synth": self.synth}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def tags(self) -> dict[str, Any]:
        """The settings that tell clips apart, for tables: object, texture, noise, motion, camera."""
        cfg = dataclasses.asdict(self.synth_config())
        motion = [f"{cfg['rotation_deg']:g}°"]
        for key, label in (("spin_axis", "axis"), ("finger_motion", "fingers")):
            value = cfg.get(key)
            if value not in (None, "palm", "none"):
                motion.append(f"{label} {value}")
        if cfg.get("translation_m"):
            motion.append(f"drift {cfg['translation_m'] * 100:g} cm")
        if cfg.get("fast_segment_fraction"):
            motion.append("fast part")
        obj = cfg["object"]
        return {
            "object": Path(obj).stem if "/" in obj or "." in obj else obj,
            "texture": cfg.get("texture_level", "rich"),
            "noise": cfg.get("noise_preset", self.synth.get("noise", "mild")),
            "motion": ", ".join(motion),
            "camera": cfg["camera_motion"],
        }


@dataclass(frozen=True)
class SuiteSpec:
    """A versioned list of clips and named subsets of it."""

    name: str
    version: int
    path: Path
    clips: list[ClipSpec]
    subsets: dict[str, list[str]] = field(default_factory=dict)
    about: str = ""

    def select(self, subset: str | None = None, names: list[str] | None = None) -> list[ClipSpec]:
        """The clips of a named subset, or of an explicit name list, or all (in file order).

        Raises:
            SuiteSpecError: unknown subset or clip name.
        """
        if subset is not None and names:
            raise SuiteSpecError("choose a subset or a list of clips, not both")
        if subset is not None:
            if subset not in self.subsets:
                raise SuiteSpecError(
                    f"{self.path}: no subset {subset!r}; subsets: {', '.join(self.subsets) or 'none'}"
                )
            names = self.subsets[subset]
        if not names:
            return list(self.clips)
        by_name = {c.name: c for c in self.clips}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise SuiteSpecError(f"{self.path}: unknown clip(s) {unknown}; clips: {', '.join(by_name)}")
        return [by_name[n] for n in names]


def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A shipped suite's name (``v1``) or a path to a suite YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    shipped = SUITES_DIR / f"{name_or_path}.yaml"
    if not shipped.is_file():
        names = sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
        raise SuiteSpecError(
            f"no suite {name_or_path!r}; shipped suites: {', '.join(names)} (or a .yaml path)"
        )
    return shipped


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SuiteSpecError(f"{where}: expected a mapping, found {type(value).__name__}")
    return value


def _check_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SuiteSpecError(f"{where}: unknown key(s) {unknown}; valid: {', '.join(sorted(allowed))}")


def load_suite(name_or_path: str | Path) -> SuiteSpec:
    """Read and check a suite file (every clip's generator settings are built once).

    Raises:
        SuiteSpecError: unreadable file, unknown keys, duplicate or bad clip names, bad subsets, or
            generator settings ``make_config`` rejects.
    """
    path = resolve_suite_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SuiteSpecError(f"{path}: cannot read suite file: {e}") from None
    data = _mapping(data, str(path))
    _check_keys(data, _SUITE_KEYS, str(path))
    defaults = _mapping(data.get("defaults"), f"{path}: defaults")
    _check_keys(defaults, _DEFAULT_KEYS, f"{path}: defaults")
    base_synth = _mapping(defaults.get("synth"), f"{path}: defaults.synth")
    preset = str(defaults.get("synth_preset", "demo"))
    raw_clips = data.get("clips")
    if not isinstance(raw_clips, list) or not raw_clips:
        raise SuiteSpecError(f"{path}: clips: expected a non-empty list of clips")
    clips: list[ClipSpec] = []
    for i, raw in enumerate(raw_clips):
        where = f"{path}: clips[{i}]"
        raw = _mapping(raw, where)
        _check_keys(raw, _CLIP_KEYS, where)
        name = raw.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise SuiteSpecError(
                f"{where}: name: expected lowercase letters, digits, '_' or '-', found {name!r}"
            )
        where = f"{path}: clip {name}"
        if any(c.name == name for c in clips):
            raise SuiteSpecError(f"{where}: duplicate clip name")
        seed = raw.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise SuiteSpecError(f"{where}: seed: expected a non-negative integer, found {seed!r}")
        synth = _merge(base_synth, _mapping(raw.get("synth"), f"{where}: synth"))
        clip = ClipSpec(name, seed, preset, synth, str(raw.get("about", "")))
        try:
            clip.synth_config()
        except (ValueError, TypeError) as e:
            raise SuiteSpecError(f"{where}: synth: {e}") from None
        clips.append(clip)
    subsets = _mapping(data.get("subsets"), f"{path}: subsets")
    names = {c.name for c in clips}
    for subset, members in subsets.items():
        if not isinstance(members, list) or not members:
            raise SuiteSpecError(f"{path}: subsets.{subset}: expected a non-empty list of clip names")
        unknown = [m for m in members if m not in names]
        if unknown:
            raise SuiteSpecError(f"{path}: subsets.{subset}: unknown clip(s) {unknown}")
    version = data.get("version", 1)
    if not isinstance(version, int):
        raise SuiteSpecError(f"{path}: version: expected an integer, found {version!r}")
    return SuiteSpec(
        name=str(data.get("name", path.stem)),
        version=version,
        path=path,
        clips=clips,
        subsets={k: list(v) for k, v in subsets.items()},
        about=str(data.get("about", "")),
    )
