"""Helpers shared by the filter / end-to-end / mpv tests (``from helpers.vsclips import ...``)."""
