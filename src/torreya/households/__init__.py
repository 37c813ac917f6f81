"""Households (户, SPEC §4.14): residents grouped by household, the household's points (what
its members earned while members), its board, and its yearly star ratings (星级平安户)."""
