"""Matplotlib figures. Every function saves to ``out`` when given and returns the Figure.

Imported lazily: ``import kerasinit`` does not import matplotlib.
"""
