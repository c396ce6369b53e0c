"""Typed configuration: one dataclass per component, YAML presets in ``configs/``, ``key=value`` overrides.

Each component's dataclass is a module of this package (``hold.config.hand.HandConfig``, …), so loading a
configuration loads no implementation; ``HoldConfig`` composes them. Loading is strict: an unknown key, a wrong type or an illegal choice is a ``ConfigError``
that names the dotted key and lists what is valid at that level.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hold.config.data import RaySamplingConfig
from hold.config.eval import EvalConfig
from hold.config.export import ExportConfig
from hold.config.hand import HandConfig
from hold.config.model import ModelConfig
from hold.config.refine import RefineConfig
from hold.config.render import RenderConfig
from hold.config.system import LossConfig, OptimConfig, TrainConfig
from hold.utils.checks import at_least
from hold.utils.io import write_text

PRESETS_DIR = Path(__file__).resolve().parents[2] / "configs"


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


@dataclass
class LoggingConfig:
    wandb: Literal["auto", "online", "offline", "disabled"] = "auto"
    """W&B mode. ``auto``: online when WANDB_API_KEY is set, else an offline run inside the run dir."""
    project: str = "hold"
    """W&B project name."""
    log_every_steps: int = 10
    """Interval, in optimisation steps, between scalar log rows (CSV and W&B)."""
    console_level: Literal["debug", "info", "warning"] = "info"
    """Verbosity of the console; the log file in the run dir always records ``info`` and above."""
    mesh_faces: int = 5000
    """Faces of the object mesh logged at each re-meshing (``train.mesh_every``: a .glb under
    ``logs/meshes/`` and a W&B 3D object), decimated to at most this many; 0 logs no meshes."""

    def __post_init__(self) -> None:
        at_least(self, 0, "mesh_faces")
        at_least(self, 1, "log_every_steps")


@dataclass
class HoldConfig:
    name: str = "hold"
    """Run name, shown in W&B and in the run dir's metadata."""
    seed: int = 0
    """Seed for every random generator used in training."""
    hand: HandConfig = field(default_factory=HandConfig)
    rays: RaySamplingConfig = field(default_factory=RaySamplingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    """Stage 2: pose refinement (HOLD §3.3–3.4)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    """`hold-export`: meshing resolutions, renders, preview video, glTF scene."""
    logging: LoggingConfig = field(default_factory=LoggingConfig)


def list_presets() -> list[str]:
    """Names of the YAML presets shipped in ``configs/``."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load_config(preset: str = "demo", overrides: list[str] | None = None) -> HoldConfig:
    """Build a ``HoldConfig`` from a preset name or a YAML path, then apply ``key=value`` overrides."""
    data = _read_yaml_with_extends(_resolve_preset(preset), seen=())
    apply_overrides(data, overrides or [])
    return from_dict(HoldConfig, data)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the fully resolved config (every key, defaults included) as YAML, atomically."""
    write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Instantiate dataclass ``cls`` from nested dicts, checking keys and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping of keys, found {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        level = f"'{where}'" if where else "the top level"
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(repr(_join(where, k)) for k in unknown)}; "
            f"valid keys at {level}: {', '.join(fields)}"
        )
    kwargs = {name: _coerce(hints[name], value, _join(where, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as e:  # a component's own consistency checks (__post_init__)
        raise ConfigError(f"{where or 'config'}: {e}") from None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError("; ".join(errors))
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, found {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} values, found {len(value)}")
            return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, found {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, found {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, found {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, found {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, found {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported config type {tp!r}")


def _resolve_preset(preset: str) -> Path:
    path = Path(preset)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    candidate = PRESETS_DIR / f"{preset}.yaml"
    if not candidate.is_file():
        raise ConfigError(
            f"unknown config preset {preset!r}; presets: {', '.join(list_presets())}, or a .yaml path"
        )
    return candidate


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (empty file: {}).

    Raises:
        ConfigError: the file is not valid YAML or its top level is not a mapping.
    """
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


def _read_yaml_with_extends(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """Read a YAML file; ``extends: other`` (preset name or path) merges this file over another."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'extends' forms a cycle")
    data = read_yaml_mapping(path)
    base = data.pop("extends", None)
    if base is None:
        return data
    base_path = path.parent / base if str(base).endswith((".yaml", ".yml")) else _resolve_preset(str(base))
    return _deep_merge(_read_yaml_with_extends(base_path, (*seen, path.resolve())), data)


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> None:
    """Apply ``key=value`` overrides to a nested dict in place (before ``from_dict`` checks it)."""
    for item in overrides:
        _apply_override(data, item)


def _apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``a.b.c=value`` override; the value is parsed as YAML (``3``, ``1e-4``, ``[1, 2]``, ``true``)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not of the form key=value (e.g. seed=3, hand.model=mano)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value
