"""hold: reconstruct a 3D hand and the unknown object it holds from one monocular video."""

__version__ = "0.1.0"
