"""Torreya: a points platform for community safety work (平安积分)."""

from torreya import convertors  # noqa: F401  (registers {…:id} before any route is made)

__version__ = "0.1.0"
