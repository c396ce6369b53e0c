"""Configuration of the training rays drawn from a SEQUENCE (``rays.*``)."""

from __future__ import annotations

from dataclasses import dataclass

from hold.utils.checks import at_least, fraction


@dataclass
class RaySamplingConfig:
    frames_per_step: int = 10
    """Frames drawn per optimisation step (HOLD: 10)."""
    rays_per_frame: int = 128
    """Pixels drawn per frame and step (HOLD: 128)."""
    box_fraction: float = 0.8
    """Share of each frame's rays drawn inside the padded box around the hand and object masks."""
    box_padding: float = 0.1
    """Padding of that box, as a fraction of its larger side."""

    def __post_init__(self) -> None:
        at_least(self, 1, "frames_per_step", "rays_per_frame")
        fraction(self, "box_fraction")
        at_least(self, 0, "box_padding")
