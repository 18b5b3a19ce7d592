"""ser: speech emotion recognition research code (PyTorch, Lightning, Hydra)."""

__version__ = "0.1.0"
