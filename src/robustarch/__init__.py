"""robustarch: architecture vs. adversarially robust generalization, as a reproducible workflow."""

__version__ = "0.1.0"
