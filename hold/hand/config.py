"""Configuration of the hand model layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class HandConfig:
    model: Literal["anny", "mano"] = "anny"
    """Hand model: the open Anny hand (default, ships with `pip install anny`) or MANO (user files)."""
    mano_dir: str = ""
    """Folder holding MANO_RIGHT.pkl / MANO_LEFT.pkl (or converted .npz); needed only for model=mano."""
