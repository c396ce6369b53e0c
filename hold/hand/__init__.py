"""Hand models behind one interface: Anny (open, default) and MANO (user-supplied)."""
