"""The hand model a config names."""

from __future__ import annotations

from hold.config.hand import HandConfig
from hold.hand.model import HandModel


def build_hand_model(cfg: HandConfig | None = None, side: str = "right") -> HandModel:
    """The hand model named by ``cfg.model`` (``anny`` or ``mano``) for one side.

    Args:
        cfg: hand config; None for the defaults (Anny).
        side: ``"right"`` or ``"left"``.

    Raises:
        ValueError: for an unknown side or model.
        FileNotFoundError: for ``mano`` when the MANO files are missing (names them and where to get them).
    """
    cfg = cfg or HandConfig()
    if cfg.model == "anny":
        from hold.hand.anny_hand import AnnyHand

        return AnnyHand(cfg, side)
    if cfg.model == "mano":
        from hold.hand.mano import ManoHand

        return ManoHand(cfg, side)
    raise ValueError(f"hand.model: expected 'anny' or 'mano', found {cfg.model!r}")
