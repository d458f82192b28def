"""Fuzz targets for every parser that takes outside bytes; run by Hypothesis and atheris."""
