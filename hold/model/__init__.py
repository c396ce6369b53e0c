"""HOLD-Net: hand, object and background nodes with per-frame parameters (HOLD §3.2)."""

from hold.model.config import HandNodeConfig, ModelConfig, ObjectNodeConfig
from hold.model.holdnet import HoldNet, HoldOutput

__all__ = ["HandNodeConfig", "HoldNet", "HoldOutput", "ModelConfig", "ObjectNodeConfig"]
