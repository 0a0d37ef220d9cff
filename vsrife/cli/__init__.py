"""Command-line interface: ``vsrife interpolate|join|models|eval|bench`` (see :mod:`vsrife.cli.main`).

The top layer: it may use the filter, engine and model layers; nothing below imports it.
"""
