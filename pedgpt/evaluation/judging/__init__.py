"""Pairwise judging: the judge prompt and verdict parser (``verdict``) and the judge backends (``backends``)."""
