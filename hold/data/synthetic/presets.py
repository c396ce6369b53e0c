"""Named settings of the synthetic generator: size presets, texture levels, noise presets, overrides.

``make_config(preset, **overrides)`` builds a ``SynthConfig``; ``texture_level`` and ``noise`` pick a
named ``TextureConfig`` / ``NoiseConfig`` as the base that nested overrides apply over.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from typing import Any, Literal

from hold.data.synthetic.config import NoiseConfig, SynthConfig, TextureConfig

TEXTURE_LEVELS: dict[str, dict[str, Any]] = {
    # Today's texture: dense sharp cells and blobs; SIFT registers every demo frame.
    "rich": {},
    # Larger cells, sparser discs, paler and lower-contrast: markedly fewer SIFT features.
    "medium": {
        "cell_size_m": 0.016,
        "spot_spacing_m": 0.025,
        "spot_radius_m": (0.003, 0.006),
        "fine_cell_size_m": 0.008,
        "fine_contrast": 0.25,
        "noise_amplitude": 0.1,
        "saturation": 0.5,
        "value_min": 0.5,
    },
    # A few large pale patches, no discs, barely any brightness variation: what breaks SfM.
    "low": {
        "cell_size_m": 0.05,
        "spot_spacing_m": 0.0,
        "fine_cell_size_m": 0.02,
        "fine_contrast": 0.03,
        "noise_amplitude": 0.03,
        "saturation": 0.25,
        "value_min": 0.7,
    },
    # One plain colour with a small high-contrast printed label (~10 % of the area) on one side.
    "plain_label": {
        "plain": True,
        "cell_size_m": 0.005,
        "spot_spacing_m": 0.007,
        "spot_radius_m": (0.0012, 0.003),
        "fine_cell_size_m": 0.003,
        "fine_contrast": 0.6,
        "saturation": 0.9,
        "value_min": 0.1,
    },
}
"""Named ``TextureConfig`` presets: the fields each sets over the defaults (``SynthConfig.texture_level``)."""


def _named(kind: str, table: dict[str, dict[str, Any]], cls: type, name: str) -> Any:
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; {kind}s: {', '.join(table)}")
    return cls(**table[name])


def texture_config(level: str) -> TextureConfig:
    """The ``TextureConfig`` of a texture level (``rich``, ``medium``, ``low`` or ``plain_label``).

    Raises:
        ValueError: for an unknown level.
    """
    return _named("texture level", TEXTURE_LEVELS, TextureConfig, level)


PRESETS: dict[str, dict[str, Any]] = {
    # Unit-test fixture: seconds to make, a few KB on disk.
    "tiny": {
        "num_frames": 6,
        "image_size": (64, 64),
        "supersample": 1,
        "object_voxel_m": 0.004,
        "grasp": {"steps": 120},
        "contact_sheet_columns": 6,
    },
    # The built-in demo: sized so preprocessing (with SfM), 3-stage training and export fit the
    # demo's CPU budget.
    "demo": {},
}


NOISE_PRESETS: dict[str, dict[str, Any]] = {
    # Today's defaults: a good segmenter and hand-pose network on a clean clip.
    "mild": {},
    # Calibrated to the mediapipe benchmark on synthetic 320-px clips: 2D keypoints ~6 px off
    # (median) with outliers, 3D keypoints ~30 mm off (mean over the non-root joints), the hand
    # missed in runs covering 10-50 % of the clip; masks with ragged ±3 px boundaries, spurious
    # blobs, thin parts missing and hand/object labels confused near the contact.
    "realistic": {
        "mask_boundary_px": 3.0,
        "mask_blob_prob": 0.4,
        "mask_thin_px": 4.0,
        "mask_contact_confusion_px": 4.0,
        "kp2d_noise_px": 5.0,
        "kp2d_outlier_prob": 0.05,
        "kp2d_outlier_px": 40.0,
        "kp3d_noise_m": 0.012,
        "kp3d_frame_noise_m": 0.015,
        "hand_dropout_runs": 2,
        "hand_dropout_fraction": (0.1, 0.5),
    },
}


_CUSTOM = "custom"


def noise_config(name: str) -> NoiseConfig:
    """The ``NoiseConfig`` of a noise preset (``mild`` or ``realistic``).

    Raises:
        ValueError: for an unknown name.
    """
    return _named("noise preset", NOISE_PRESETS, NoiseConfig, name)


def make_config(preset: str = "demo", **overrides: Any) -> SynthConfig:
    """Build the ``SynthConfig`` of a preset, with field overrides.

    ``noise`` may be a noise preset name (``make_config("demo", noise="realistic")``), a
    ``NoiseConfig`` or a dict of fields over ``noise_preset``'s. Keys may be dotted to reach into
    nested configs (``**{"texture.cell_size_m": 0.01}``); they apply after the plain keys.

    Args:
        preset: ``tiny`` or ``demo``.
        **overrides: ``SynthConfig`` fields to replace (nested configs as dataclasses or dicts).

    Raises:
        ValueError: for an unknown preset, field or noise preset, or a value of the wrong kind.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; presets: {', '.join(PRESETS)}")
    values = {**PRESETS[preset], **overrides}
    noise, noise_preset = values.pop("noise", None), values.pop("noise_preset", None)
    if isinstance(noise, str):
        if noise_preset not in (None, noise):
            raise ValueError(f"noise={noise!r} contradicts noise_preset={noise_preset!r}")
        noise_preset, noise = noise, None
    cfg = SynthConfig()
    texture_level = values.pop("texture_level", None)
    if texture_level is not None:  # the level is the base that ``texture`` overrides apply over
        cfg.texture = texture_config(texture_level)
        cfg.texture_level = texture_level
    if noise_preset is not None:  # "custom" (a config that matched no preset) starts from the defaults
        cfg.noise = NoiseConfig() if noise_preset == _CUSTOM else noise_config(noise_preset)
        cfg.noise_preset = noise_preset
    if noise is not None:
        values["noise"] = noise
    apply_overrides(cfg, values)
    if isinstance(noise, NoiseConfig):  # a whole config: name the preset it equals, if any
        cfg.noise_preset = next((n for n in NOISE_PRESETS if noise_config(n) == noise), _CUSTOM)
    return cfg


def apply_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """Set fields of a config dataclass in place, plain keys first, then dotted ones (``grasp.steps``).

    A dict given for a nested config replaces only the fields it names. Lists become tuples where
    the field holds a tuple (YAML has no tuples) and integers become floats where it holds a float.

    Returns:
        ``cfg``.

    Raises:
        ValueError: an unknown key (the message lists the valid ones at that level), a value of the
            wrong kind, or one outside a ``Literal`` field's choices.
    """
    for key in sorted(overrides, key=lambda k: "." in k):  # stable: plain keys keep their order
        *parents, name = key.split(".")
        target = cfg
        for i, part in enumerate(parents):
            _check_key(target, part, ".".join(parents[:i]))
            target = getattr(target, part)
            if not dataclasses.is_dataclass(target):
                raise ValueError(f"{'.'.join(parents[: i + 1])} is not a nested config: cannot set {key}")
        _check_key(target, name, ".".join(parents))
        _set_field(target, name, overrides[key], key)
    return cfg


def _check_key(target: Any, name: str, prefix: str) -> None:
    names = [f.name for f in dataclasses.fields(target)]
    if name not in names:
        valid = ", ".join(f"{n}.*" if dataclasses.is_dataclass(getattr(target, n)) else n for n in names)
        where = f"{prefix}.{name}" if prefix else name
        raise ValueError(f"unknown {type(target).__name__} field {where!r}; valid: {valid}")


def _set_field(target: Any, name: str, value: Any, key: str) -> None:
    current = getattr(target, name)
    if dataclasses.is_dataclass(current):
        if isinstance(value, dict):  # partial override of a nested config
            for sub, sub_value in value.items():
                _check_key(current, sub, key)
                _set_field(current, sub, sub_value, f"{key}.{sub}")
            return
        if type(value) is not type(current):
            raise ValueError(f"{key}: expected a {type(current).__name__} or a dict, got {value!r}")
        value = copy.deepcopy(value)
    elif isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false, got {value!r}")
    elif isinstance(current, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key}: expected a number, got {value!r}")
        value = float(value) if isinstance(current, float) else value
        if isinstance(current, int) and not isinstance(value, int):
            raise ValueError(f"{key}: expected an integer, got {value!r}")
    elif isinstance(current, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(current):
            raise ValueError(f"{key}: expected a list of {len(current)} values, got {value!r}")
        value = tuple(
            float(v) if isinstance(c, float) and isinstance(v, int) else v for c, v in zip(current, value)
        )
    elif isinstance(current, str):
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string, got {value!r}")
        choices = _literal_choices(type(target), name)
        if choices and value not in choices:
            raise ValueError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
    setattr(target, name, value)


def _literal_choices(cls: type, name: str) -> tuple[Any, ...]:
    """The allowed values of a ``Literal``-typed dataclass field, or () for any other type."""
    hint = typing.get_type_hints(cls).get(name)
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()
