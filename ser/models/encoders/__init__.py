"""Encoders: (B, F, T) features and frame lengths (B,) -> (B, D) embeddings, with ``out_dim``."""
