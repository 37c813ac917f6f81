"""Torreya: a points platform for community safety work (平安积分)."""

__version__ = "0.1.0"
