"""Reusable widgets: number grids, digit images, plots, confusion matrices."""
